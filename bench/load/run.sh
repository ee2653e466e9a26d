#!/usr/bin/env bash
# Load harness for authgate: a bare reverse_proxy against the guarded
# configurations, on one machine, in one run. See bench/load/README.md.
#
#   bash bench/load/run.sh                      # default: 5 rounds of 6s, 64 connections
#   QUICK=1 ROUNDS=1 DURATION=5s bash bench/load/run.sh
#
# Environment:
#   DURATION=6s       length of each measured wrk run (rounds and 1-connection pass)
#   ROUNDS=5          interleaved rounds (bare+memory, bare+redis, bare+redis+stepup, bare+bare-notoken pairs,
#                     then 1-connection bare, redis)
#   CONNS=64          connections for the throughput runs
#   THREADS=          wrk threads (default 1 when wrk has a core of its own, else 2)
#   QUICK=0           1 skips the 1M-session fill and its flat-cost runs
#   WARMUP=2s         warm-up run per endpoint before round 1
#   FLAT_DURATION=5s  length of each flat-cost run
#   MEM_N=100000      sessions filled for the memory measurement
#   BIG_N=1000000     live sessions for the large flat-cost run
#   SMALL_N=1000      live sessions for the small flat-cost run
#   SPREAD_TOKENS=1000  distinct tokens (sessions) in the "spread" flat-cost runs
#   COLD_TOKENS=50000   distinct tokens in the verify-cache-miss run (> the 2x16384 verified-token cache)
#   KEEP=0            1 keeps the work directory (configs, logs, wrk output)
set -Eeuo pipefail

DURATION=${DURATION:-6s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
QUICK=${QUICK:-0}
WARMUP=${WARMUP:-2s}
FLAT_DURATION=${FLAT_DURATION:-5s}
MEM_N=${MEM_N:-100000}
BIG_N=${BIG_N:-1000000}
SMALL_N=${SMALL_N:-1000}
SPREAD_TOKENS=${SPREAD_TOKENS:-1000}
COLD_TOKENS=${COLD_TOKENS:-50000}
KEEP=${KEEP:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/authgate-load.XXXXXX")
mkdir -p "$W/bin" "$W/log" "$W/xdg"
PIDS=()
WRK_PID=
FAILED=0

# ---------------------------------------------------------------- cleanup

cleanup() {
	local rc=$?
	trap - EXIT INT TERM ERR
	[ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
	local pid i
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	if [ "$rc" = 130 ] || [ "$rc" = 143 ]; then
		echo "interrupted: stopped everything this run started" >&2
	elif [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
		echo >&2
		echo "run failed (exit $rc); last log lines:" >&2
		for f in "$W"/log/*.log; do
			[ -s "$f" ] || continue
			[[ $f == */validate-* ]] && continue
			echo "--- $(basename "$f")" >&2
			tail -n 15 "$f" >&2
		done
	fi
	if [ "$KEEP" = 1 ]; then
		echo "work directory kept: $W" >&2
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	echo "error: $*" >&2
	FAILED=1
	exit 1
}

# ---------------------------------------------------------------- tools

need_apt() { # package
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "installing $1 with apt-get..."
	$sudo apt-get update -qq >/dev/null
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}
command -v wrk >/dev/null || need_apt wrk
command -v redis-server >/dev/null || need_apt redis-server
command -v redis-cli >/dev/null || need_apt redis-tools
command -v go >/dev/null || die "go is not on PATH"
command -v curl >/dev/null || die "curl is not on PATH"
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- pinning

# Expand the allowed-CPU list ("0-3,6") of this process.
CPU_LIST=()
for part in $(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status | tr ',' ' '); do
	if [[ $part == *-* ]]; then
		for ((c = ${part%-*}; c <= ${part#*-}; c++)); do CPU_LIST+=("$c"); done
	else
		CPU_LIST+=("$part")
	fi
done
if [ "${#CPU_LIST[@]}" -ge 2 ]; then
	CPIN=(taskset -c "${CPU_LIST[0]}")
	SPIN=(taskset -c "${CPU_LIST[1]}")
	PIN_MSG="wrk (and fill helpers) on CPU ${CPU_LIST[0]}; gateways, upstream and redis-server on CPU ${CPU_LIST[1]}"
	THREADS=${THREADS:-1}
else
	CPIN=()
	SPIN=()
	PIN_MSG="one CPU: no pinning, client and server share it"
	THREADS=${THREADS:-2}
fi
[ "$THREADS" -le "$CONNS" ] || THREADS=$CONNS

# ---------------------------------------------------------------- ports, processes

# Ports come from below the kernel's ephemeral range, so that no outgoing
# connection (of this run or anyone else's) can hold them, and never 6379.
TAKEN=" 6379 "
PORT_HI=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
[ "$PORT_HI" -gt 12000 ] || PORT_HI=32767
free_port() { # VAR
	local p
	while :; do
		p=$((10000 + RANDOM % (PORT_HI - 10000)))
		[[ $TAKEN == *" $p "* ]] && continue
		if command -v ss >/dev/null && [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
			continue
		fi
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			TAKEN+="$p "
			printf -v "$1" %s "$p"
			return
		fi
	done
}

start() { # NAME cmd...: run in the background, log to $W/log/NAME.log, PID in PID_NAME
	local name=$1
	shift
	XDG_DATA_HOME="$W/xdg" XDG_CONFIG_HOME="$W/xdg" "$@" >"$W/log/$name.log" 2>&1 &
	PIDS+=("$!")
	printf -v "PID_$name" %s "$!"
}

wait_port() { # PORT PID NAME
	local i
	for i in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see its log below)"
		sleep 0.1
	done
	die "$3 did not listen on port $1 within 30s"
}

alive() { # PID NAME
	kill -0 "$1" 2>/dev/null || die "$2 (pid $1) died"
}

# ---------------------------------------------------------------- build

echo "authgate load harness"
echo "  started:   $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  cpus:      ${#CPU_LIST[@]} allowed (${CPU_LIST[*]}); $PIN_MSG"
echo "  tools:     $(go version | cut -d' ' -f3), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/')"
echo "  settings:  DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS QUICK=$QUICK FLAT_DURATION=$FLAT_DURATION"
echo "building authgate and helpers..."
(
	cd "$ROOT"
	go build -o "$W/bin/authgate" ./cmd/authgate
	go build -o "$W/bin/" ./bench/load/upstream ./bench/load/sessions ./bench/load/token
) || die "build failed"

# ---------------------------------------------------------------- redis, upstream

free_port RPORT
start redis "${SPIN[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$W" --logfile "" --databases 1
wait_port "$RPORT" "$PID_redis" redis-server
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
for i in $(seq 50); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done

free_port UPORT
start upstream "${SPIN[@]}" "$W/bin/upstream" -addr "127.0.0.1:$UPORT"
wait_port "$UPORT" "$PID_upstream" upstream

# ---------------------------------------------------------------- gateways

KEY=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
cat >"$W/users.json" <<'EOF'
{"users":[
 {"id":"1001","credentialsType":"ROOT","email":"alice@example.com","password":"$2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2",
  "identities":[{"type":"CONSUMER","id":"2001","name":"Alice"},{"type":"CORPORATE","id":"3001","name":"Acme"}],
  "factors":{"otp":["SMS"],"push":["AUTHY"]},"phone":"+35699000001"},
 {"id":"1002","credentialsType":"USER","email":"bob@example.com","password":"$2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2",
  "identities":[{"type":"CORPORATE","id":"3001","name":"Acme"}]}
]}
EOF

globals() { # [authgate store line]
	cat <<EOF
{
	admin off
	auto_https off
	persist_config off
	log {
		level WARN
	}
EOF
	if [ -n "${1:-}" ]; then
		cat <<EOF
	authgate {
		store $1
		signing_key $KEY
		users_file $W/users.json
		session_idle 1h
		sandbox
	}
EOF
	fi
	echo "}"
}

free_port BPORT
free_port MPORT
free_port GPORT

# Bare: the same route shape as the guarded configs, no authgate anywhere.
{
	globals
	cat <<EOF
:$BPORT {
	bind 127.0.0.1
	handle /api/* {
		reverse_proxy 127.0.0.1:$UPORT
	}
}
EOF
} >"$W/bare.Caddyfile"

guarded_site() { # PORT with-stepup-route
	cat <<EOF
:$1 {
	bind 127.0.0.1
	handle_path /multi/* {
		authgate_api
	}
	handle /api/* {
		authgate_protect
		reverse_proxy 127.0.0.1:$UPORT
	}
EOF
	if [ "$2" = 1 ]; then
		cat <<EOF
	handle /pay/* {
		authgate_protect {
			stepup 1h
		}
		reverse_proxy 127.0.0.1:$UPORT
	}
EOF
	fi
	echo "}"
}
{ globals memory; guarded_site "$MPORT" 0; } >"$W/memory.Caddyfile"
{ globals "redis redis://127.0.0.1:$RPORT/0"; guarded_site "$GPORT" 1; } >"$W/redis.Caddyfile"

for g in bare memory redis; do
	"$W/bin/authgate" validate --config "$W/$g.Caddyfile" --adapter caddyfile >"$W/log/validate-$g.log" 2>&1 ||
		{ cat "$W/log/validate-$g.log" >&2; die "$g.Caddyfile does not validate"; }
done
start bare "${SPIN[@]}" "$W/bin/authgate" run --config "$W/bare.Caddyfile" --adapter caddyfile
start memory "${SPIN[@]}" "$W/bin/authgate" run --config "$W/memory.Caddyfile" --adapter caddyfile
start redisgw "${SPIN[@]}" "$W/bin/authgate" run --config "$W/redis.Caddyfile" --adapter caddyfile
wait_port "$BPORT" "$PID_bare" "bare gateway"
wait_port "$MPORT" "$PID_memory" "memory gateway"
wait_port "$GPORT" "$PID_redisgw" "redis gateway"

# ---------------------------------------------------------------- tokens, sanity

MEM_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$MPORT/multi") || die "memory gateway: no token"
RED_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$GPORT/multi") || die "redis gateway: no token"
STEP_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$GPORT/multi" -stepup) || die "redis gateway: no stepped-up token"

expect() { # STATUS URL [TOKEN]
	local got
	if [ -n "${3:-}" ]; then
		got=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $3" "$2")
	else
		got=$(curl -s -o /dev/null -w '%{http_code}' "$2")
	fi
	[ "$got" = "$1" ] || die "sanity check: $2 answered $got, want $1"
}
URL_BARE="http://127.0.0.1:$BPORT/api/bench"
URL_MEM="http://127.0.0.1:$MPORT/api/bench"
URL_RED="http://127.0.0.1:$GPORT/api/bench"
URL_STEP="http://127.0.0.1:$GPORT/pay/bench"
expect 200 "$URL_BARE"
expect 401 "$URL_MEM"
expect 200 "$URL_MEM" "$MEM_TOKEN"
expect 401 "$URL_RED"
expect 200 "$URL_RED" "$RED_TOKEN"
expect 403 "$URL_STEP" "$RED_TOKEN"
expect 200 "$URL_STEP" "$STEP_TOKEN"
echo "gateways up (admin off, no access log, runtime log level WARN); sanity checks passed (401 without token, 403 before step-up, 200 with)"

# ---------------------------------------------------------------- measuring

cat >"$W/report.lua" <<'EOF'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
EOF
cat >"$W/tokens.lua" <<'EOF'
-- Cycles through the tokens in the file given after "--", one per request.
local toks, i = {}, 0
init = function(args)
	for line in io.lines(args[1]) do toks[#toks + 1] = "Bearer " .. line end
	i = math.random(#toks)
end
request = function()
	i = i % #toks + 1
	wrk.headers["Authorization"] = toks[i]
	return wrk.format()
end
EOF
cat "$W/report.lua" >>"$W/tokens.lua"

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
cmdstats() { rcli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_/ && $1 != "cmdstat_info" { print substr($1, 9), $3 }'; }

# measure PID URL CONNS THREADS DURATION [TOKEN | @TOKENFILE]
# Sets M_REQ M_RPS M_P50 M_P99 (µs), M_CPU M_UCPU M_RCPU (gateway, upstream, redis-server CPU µs per
# request), M_CMDS (Redis commands per request), M_BREAK, M_NON2XX, M_SOCKERR.
measure() {
	local pid=$1 url=$2 conns=$3 threads=$4 dur=$5 tok=${6:-}
	local args=(-c "$conns" -t "$threads" -d "$dur" --latency --timeout 5s)
	if [[ $tok == @* ]]; then
		args+=(-s "$W/tokens.lua" "$url" -- "${tok#@}")
	elif [ -n "$tok" ]; then
		args+=(-s "$W/report.lua" -H "Authorization: Bearer $tok" "$url")
	else
		args+=(-s "$W/report.lua" "$url")
	fi
	alive "$pid" gateway
	local c0 r0 u0 c1 r1 u1
	cmdstats >"$W/cs0"
	c0=$(cpu_ticks "$pid")
	r0=$(cpu_ticks "$PID_redis")
	u0=$(cpu_ticks "$PID_upstream")
	"${CPIN[@]}" wrk "${args[@]}" >"$W/wrk.out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || { cat "$W/wrk.out" >&2; die "wrk failed"; }
	WRK_PID=
	c1=$(cpu_ticks "$pid")
	r1=$(cpu_ticks "$PID_redis")
	u1=$(cpu_ticks "$PID_upstream")
	cmdstats >"$W/cs1"
	alive "$pid" gateway
	local line dur_us
	line=$(grep '^RESULT' "$W/wrk.out") || { cat "$W/wrk.out" >&2; die "no result from wrk"; }
	read -r _ M_REQ dur_us M_P50 M_P99 M_NON2XX M_SOCKERR <<<"$line"
	if [ "$M_REQ" -eq 0 ]; then
		# Nothing completed within the run (seen when other jobs starve the
		# server core): report it and go on rather than divide by zero.
		echo "  warning: no request to $url completed within $dur; wrk said:" >&2
		grep -v '^RESULT' "$W/wrk.out" | sed 's/^/    /' >&2
		ERRORS+="  $url: no request completed within $dur"$'\n'
		M_RPS=0 M_CPU=0 M_RCPU=0 M_UCPU=0 M_CMDS=0 M_BREAK=
		return 0
	fi
	M_RPS=$(awk -v n="$M_REQ" -v d="$dur_us" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
	M_CPU=$(awk -v a="$c0" -v b="$c1" -v n="$M_REQ" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
	M_RCPU=$(awk -v a="$r0" -v b="$r1" -v n="$M_REQ" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
	M_UCPU=$(awk -v a="$u0" -v b="$u1" -v n="$M_REQ" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
	M_CMDS=$(awk -v n="$M_REQ" 'NR == FNR { a[$1] = $2; next } { s += $2 - a[$1] } END { printf "%.3f", s / n }' "$W/cs0" "$W/cs1")
	M_BREAK=$(awk -v n="$M_REQ" 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d > 0) printf "%s%s=%.3f", (k++ ? " " : ""), $1, d / n }' "$W/cs0" "$W/cs1")
	if [ "$M_NON2XX" -gt 0 ] || [ "$M_SOCKERR" -gt 0 ]; then
		ERRORS+="  $url: $M_NON2XX non-2xx/3xx and $M_SOCKERR socket errors of $M_REQ requests"$'\n'
	fi
}
ERRORS=

ms() { awk -v u="$1" 'BEGIN { printf "%.2fms", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) printf "0.00"; else printf "%.2f", a / b }'; }
line64() { # LABEL RATIO
	printf '  %-14s %6s req/s  p50 %8s  p99 %9s  gw %6s up %5s redis %5s µs/req  %5s redis cmd/req  x%s' \
		"$1" "$M_RPS" "$(ms "$M_P50")" "$(ms "$M_P99")" "$M_CPU" "$M_UCPU" "$M_RCPU" "$M_CMDS" "$2"
	[ -n "$M_BREAK" ] && printf '  [%s]' "$M_BREAK"
	[ "$M_NON2XX" -gt 0 ] || [ "$M_SOCKERR" -gt 0 ] && printf '  ERRORS: %s non-2xx, %s socket' "$M_NON2XX" "$M_SOCKERR"
	echo
}

# median FILE COLUMN [FILTER-COLUMN VALUE]
median() {
	awk -v c="$2" -v fc="${3:-0}" -v fv="${4:-}" 'fc == 0 || $fc == fv { print $c }' "$1" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Every configuration gets the same request: clients send their token
# whether or not a guard checks it, and a bare reverse_proxy forwards it
# like any header, so the ratio measures the guard's own work, not the
# token's bytes. "bare-notoken" (the same bare proxy, no Authorization
# header) shows what the header alone costs; it is reported, not used in
# any ratio.
CONFIGS=(bare memory redis redis+stepup bare-notoken)
PAIRED=(bare memory bare redis bare redis+stepup bare bare-notoken)
declare -A C_PID=([bare]=$PID_bare [memory]=$PID_memory [redis]=$PID_redisgw [redis+stepup]=$PID_redisgw [bare-notoken]=$PID_bare)
declare -A C_URL=([bare]=$URL_BARE [memory]=$URL_MEM [redis]=$URL_RED [redis+stepup]=$URL_STEP [bare-notoken]=$URL_BARE)
declare -A C_TOK=([bare]=$RED_TOKEN [memory]=$MEM_TOKEN [redis]=$RED_TOKEN [redis+stepup]=$STEP_TOKEN [bare-notoken]="")

echo
echo "warm-up: $WARMUP per configuration"
for cfg in "${CONFIGS[@]}"; do
	measure "${C_PID[$cfg]}" "${C_URL[$cfg]}" "$CONNS" "$THREADS" "$WARMUP" "${C_TOK[$cfg]}"
	line64 "$cfg" "-"
done

: >"$W/rounds.tsv"
: >"$W/conn1.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
	echo
	echo "round $r/$ROUNDS: $CONNS connections, $DURATION each"
	bare_rps=
	# Paired: bare runs right before each other configuration and that
	# configuration's ratio is to this bare run. This machine's speed drifts
	# by +-20% over minutes (the upstream, doing the same work in every
	# run, shows it), so a ratio to a bare run further away measures the
	# drift as much as the guard.
	for cfg in "${PAIRED[@]}"; do
		measure "${C_PID[$cfg]}" "${C_URL[$cfg]}" "$CONNS" "$THREADS" "$DURATION" "${C_TOK[$cfg]}"
		# Core-time estimate: the server core's CPU per request (gateway +
		# upstream + redis-server) of bare over this configuration's. Less
		# sensitive than req/s to other load on the machine.
		total=$(awk -v a="$M_CPU" -v b="$M_UCPU" -v c="$M_RCPU" 'BEGIN { print a + b + c }')
		if [ "$cfg" = bare ]; then bare_rps=$M_RPS bare_total=$total; fi
		x=$(ratio "$M_RPS" "$bare_rps")
		line64 "$cfg" "$x"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$M_RPS" "$M_P50" "$M_P99" "$M_CPU" "$M_RCPU" \
			"$M_CMDS" "$x" "$M_UCPU" "$(ratio "$bare_total" "$total")" >>"$W/rounds.tsv"
	done
	echo "round $r/$ROUNDS: 1 connection, $DURATION each"
	for cfg in bare redis; do
		measure "${C_PID[$cfg]}" "${C_URL[$cfg]}" 1 1 "$DURATION" "${C_TOK[$cfg]}"
		printf '  %-14s %8s req/s  p50 %6s µs  p99 %6s µs  gw %6s µs/req  %6s redis cmd/req\n' \
			"$cfg" "$M_RPS" "$M_P50" "$M_P99" "$M_CPU" "$M_CMDS"
		printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$M_P50" "$M_P99" "$M_RPS" >>"$W/conn1.tsv"
	done
done

# Per-round 1-connection overheads (redis minus bare, same round).
awk -F'\t' '$2 == "bare" { b50[$1] = $3; b99[$1] = $4 } $2 == "redis" { r50[$1] = $3; r99[$1] = $4 }
	END { for (r in r50) print r, r50[r] - b50[r], r99[r] - b99[r] }' "$W/conn1.tsv" >"$W/overhead.txt"

# ---------------------------------------------------------------- flat cost

dbsize() { rcli DBSIZE | tr -d '\r'; }
# flat LABEL SPREAD-TOKEN-FILE: bare, redis with one hot token, redis across SPREAD_TOKENS sessions
: >"$W/flat.txt"
flat() {
	echo "flat cost with $1 live sessions ($(dbsize) keys in Redis), $CONNS connections, $FLAT_DURATION each:"
	measure "$PID_bare" "$URL_BARE" "$CONNS" "$THREADS" "$FLAT_DURATION" "$RED_TOKEN"
	local b=$M_RPS
	FLAT_BARE=$b
	line64 bare "1.00"
	measure "$PID_redisgw" "$URL_RED" "$CONNS" "$THREADS" "$FLAT_DURATION" "$RED_TOKEN"
	line64 "redis, 1 token" "$(ratio "$M_RPS" "$b")"
	printf '  %-3s sessions, 1 token:          %6s req/s  x%s  gw %6s  redis-server %5s µs/req  %s redis cmd/req\n' \
		"$1" "$M_RPS" "$(ratio "$M_RPS" "$b")" "$M_CPU" "$M_RCPU" "$M_CMDS" >>"$W/flat.txt"
	measure "$PID_redisgw" "$URL_RED" "$CONNS" "$THREADS" "$FLAT_DURATION" "@$2"
	line64 "redis, spread" "$(ratio "$M_RPS" "$b")"
	printf '  %-3s sessions, %5d tokens:      %6s req/s  x%s  gw %6s  redis-server %5s µs/req  %s redis cmd/req\n' \
		"$1" "$(wc -l <"$2")" "$M_RPS" "$(ratio "$M_RPS" "$b")" "$M_CPU" "$M_RCPU" "$M_CMDS" >>"$W/flat.txt"
}

echo
echo "filling Redis to ~$SMALL_N live sessions:"
"${CPIN[@]}" "$W/bin/sessions" -addr "127.0.0.1:$RPORT" -n "$SMALL_N" \
	-tokens "$W/spread-small.txt" -ntokens "$SPREAD_TOKENS" -key "$KEY" || die "session fill failed"
flat 1k "$W/spread-small.txt"

echo
echo "Redis memory per live session: adding $MEM_N sessions"
"${CPIN[@]}" "$W/bin/sessions" -addr "127.0.0.1:$RPORT" -n "$MEM_N" -measure \
	-tokens "$W/cold.txt" -ntokens "$COLD_TOKENS" -key "$KEY" | tee "$W/memory.txt" || die "session fill failed"

if [ "$QUICK" != 1 ]; then
	echo
	have=$(dbsize)
	add=$((BIG_N - have))
	echo "filling Redis to $BIG_N live sessions: adding $add"
	"${CPIN[@]}" "$W/bin/sessions" -addr "127.0.0.1:$RPORT" -n "$add" -measure \
		-tokens "$W/spread-big.txt" -ntokens "$SPREAD_TOKENS" -key "$KEY" | tee "$W/memory-big.txt" || die "session fill failed"
	flat 1M "$W/spread-big.txt"
else
	echo
	echo "QUICK=1: 1M-session fill and flat-cost runs skipped"
fi

echo
echo "verify-cache misses: $(wc -l <"$W/cold.txt") distinct tokens round-robin ($(dbsize) keys in Redis), $FLAT_DURATION:"
measure "$PID_redisgw" "$URL_RED" "$CONNS" "$THREADS" "$FLAT_DURATION" "@$W/cold.txt"
line64 "redis, cold" "$(ratio "$M_RPS" "$FLAT_BARE")"
COLD_LINE="  $(wc -l <"$W/cold.txt") tokens, no verify-cache hits: $M_RPS req/s  x$(ratio "$M_RPS" "$FLAT_BARE") (bare of the step before)  gw $M_CPU  redis-server $M_RCPU µs/req  $M_CMDS redis cmd/req"

# ---------------------------------------------------------------- summary

echo
echo "================================================================ summary"
echo "median over $ROUNDS round(s), $CONNS connections, $DURATION per run; ratio = req/s / req/s of the bare run just before"
printf '  %-14s %7s %9s %10s %10s %9s %12s %14s %8s %9s\n' config "req/s" p50 p99 "gw µs/req" "upstream" "redis-server" "redis cmd/req" "x bare" "x bare*"
for cfg in "${CONFIGS[@]}"; do
	printf '  %-14s %7.0f %9s %10s %10.1f %9.1f %12.1f %14.3f %8.2f %9.2f\n' "$cfg" \
		"$(median "$W/rounds.tsv" 3 2 "$cfg")" "$(ms "$(median "$W/rounds.tsv" 4 2 "$cfg")")" \
		"$(ms "$(median "$W/rounds.tsv" 5 2 "$cfg")")" "$(median "$W/rounds.tsv" 6 2 "$cfg")" \
		"$(median "$W/rounds.tsv" 10 2 "$cfg")" "$(median "$W/rounds.tsv" 7 2 "$cfg")" \
		"$(median "$W/rounds.tsv" 8 2 "$cfg")" "$(median "$W/rounds.tsv" 9 2 "$cfg")" \
		"$(median "$W/rounds.tsv" 11 2 "$cfg")"
done
echo "  x bare  = req/s over req/s of the bare run just before (the spec's measure; what the last line reports); every"
echo "            configuration, bare included, gets the same request with its Authorization header; bare-notoken is"
echo "            bare without that header, for reference only"
echo "  x bare* = estimate from CPU time on the server core: (gw+upstream+redis-server µs/req of that bare run) / (same"
echo "            of the configuration)"
echo "  targets: redis x bare >= 0.90; <= 1 Redis round trip (here: command) per guarded request"
echo
echo "1 connection (latency), median over $ROUNDS round(s):"
printf '  bare   p50 %6.0f µs   p99 %6.0f µs\n' "$(median "$W/conn1.tsv" 3 2 bare)" "$(median "$W/conn1.tsv" 4 2 bare)"
printf '  redis  p50 %6.0f µs   p99 %6.0f µs\n' "$(median "$W/conn1.tsv" 3 2 redis)" "$(median "$W/conn1.tsv" 4 2 redis)"
printf '  overhead (redis - bare, same round): p50 %+.0f µs (target <= 50), p99 %+.0f µs (target <= 500)\n' \
	"$(median "$W/overhead.txt" 2)" "$(median "$W/overhead.txt" 3)"
echo
echo "Redis memory per live session ($MEM_N sessions):"
grep -E 'MEMORY USAGE|used_memory|stored record' "$W/memory.txt"
if [ "$QUICK" != 1 ]; then
	echo "  at 1M (the $add sessions added last):"
	grep -E 'MEMORY USAGE|used_memory' "$W/memory-big.txt" | sed 's/^/  /'
fi
echo
echo "flat cost per request (redis config, $CONNS connections; x = req/s over the bare run just before; compare the µs/req):"
cat "$W/flat.txt"
echo "$COLD_LINE"
echo
if [ -n "$ERRORS" ]; then
	echo "errors under load:"
	printf '%s' "$ERRORS"
else
	echo "errors under load: none (every response 2xx, no socket errors)"
fi
for g in memory redisgw; do
	n=$(grep -c '"level":"error"' "$W/log/$g.log" || true)
	[ "$n" -eq 0 ] || { echo "  $g gateway logged $n error lines, e.g.:"; grep -m3 '"level":"error"' "$W/log/$g.log" | cut -c1-300 | sed 's/^/    /'; }
done
echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf 'guard/bare ratio: %.2f (redis), %.2f (memory)\n' "$(median "$W/rounds.tsv" 9 2 redis)" "$(median "$W/rounds.tsv" 9 2 memory)"
