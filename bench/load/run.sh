#!/usr/bin/env bash
# Load harness for authgate: a bare reverse_proxy against the guarded
# configurations, on one machine, in one run. See bench/load/README.md.
#
#   bash bench/load/run.sh                      # default: 5 rounds of 6s, 64 connections (~11 min on 2 cores)
#   QUICK=1 ROUNDS=1 DURATION=3s IDLE_SECONDS=10 bash bench/load/run.sh
#
# Environment:
#   DURATION=6s       length of each measured wrk run (rounds and 1-connection pass)
#   ROUNDS=5          interleaved rounds (bare+memory, bare+redis, bare+redis+stepup, bare+sentinel, bare+cluster,
#                     bare+mix, bare+bare-control, bare+bare-notoken pairs, then 1-connection bare, redis)
#   CONNS=64          connections for the throughput runs
#   THREADS=          wrk threads (default 1 when wrk has a core of its own, else 2)
#   QUICK=0           1 skips the 1M-session fill and its flat-cost runs
#   WARMUP=2s         warm-up run per endpoint before round 1
#   FLAT_DURATION=5s  length of each flat-cost run
#   MEM_N=100000      sessions filled for the memory measurement
#   BIG_N=1000000     live sessions for the large flat-cost run
#   SMALL_N=1000      live sessions for the small flat-cost run
#   SPREAD_TOKENS=1000  distinct tokens (sessions) in the "spread" flat-cost runs
#   COLD_TOKENS=100000  distinct tokens, none seen before, in the verify-cache-miss run (at most MEM_N; keep it above
#                     the requests of one FLAT_DURATION run, so that no token comes round to the verified-token cache)
#   MIX_N=100000      live sessions of the mix row, each with a token, drawn with a Zipf skew
#   MIX_S=1.1         Zipf exponent of the mix row (P(rank k) ~ k^-s)
#   MIX_FRESH_PCT=1   percent of mix requests that are a fresh login (first request of an unread session)
#   MIX_MAX_RPS=30000 req/s the fresh-token pool is sized for (MIX_FRESH_PCT% x this x DURATION per run)
#   IDLE_SECONDS=60   idle-CPU window after the rounds (20 with QUICK=1)
#   REDIS_CORE=client where the redis-server processes (standalone, Sentinel, Cluster) run: "client", on wrk's
#                     core, off the core under test, as Redis on a host of its own would be; "server", on the
#                     gateways' core (the layout of reports before 2026-12-02's evening run)
#   ONLY=             configurations to measure, in order, each between two bare runs (default: all but
#                     bare-headers, a reference row: bare plus six static identity-shaped headers)
#   KEEP=0            1 keeps the work directory (configs, logs, wrk output)
#   PROFILE=          a directory: gateways run with the admin API on (127.0.0.1, a free port each) and every
#                     64-connection run of round 1 writes a CPU profile of its gateway there (r1-NN-CFG.pprof;
#                     read with go tool pprof -top FILE); costs the gateway a little during those runs
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
COLD_TOKENS=${COLD_TOKENS:-100000}
MIX_N=${MIX_N:-100000}
MIX_S=${MIX_S:-1.1}
MIX_FRESH_PCT=${MIX_FRESH_PCT:-1}
MIX_MAX_RPS=${MIX_MAX_RPS:-30000}
if [ "$QUICK" = 1 ]; then IDLE_SECONDS=${IDLE_SECONDS:-20}; else IDLE_SECONDS=${IDLE_SECONDS:-60}; fi
KEEP=${KEEP:-0}
PROFILE=${PROFILE:-}

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
REDIS_CORE=${REDIS_CORE:-client}
case $REDIS_CORE in client | server) ;; *) echo "REDIS_CORE: want client or server, not $REDIS_CORE" >&2; exit 2 ;; esac
if [ "${#CPU_LIST[@]}" -ge 2 ]; then
	CPIN=(taskset -c "${CPU_LIST[0]}")
	SPIN=(taskset -c "${CPU_LIST[1]}")
	if [ "$REDIS_CORE" = client ]; then
		RPIN=("${CPIN[@]}")
		PIN_MSG="wrk (and fill helpers) and redis-server on CPU ${CPU_LIST[0]}; gateways and upstream on CPU ${CPU_LIST[1]}"
	else
		RPIN=("${SPIN[@]}")
		PIN_MSG="wrk (and fill helpers) on CPU ${CPU_LIST[0]}; gateways, upstream and redis-server on CPU ${CPU_LIST[1]}"
	fi
	THREADS=${THREADS:-1}
else
	CPIN=()
	SPIN=()
	RPIN=()
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
port_busy() { # PORT: listened on, connected from, or refusing nothing (someone answers)
	command -v ss >/dev/null && [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ] && return 0
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() { # VAR
	local p
	while :; do
		p=$((10000 + RANDOM % (PORT_HI - 10000)))
		[[ $TAKEN == *" $p "* ]] && continue
		if ! port_busy "$p"; then
			TAKEN+="$p "
			printf -v "$1" %s "$p"
			return
		fi
	done
}
# A Cluster node also listens on its port + 10000 (the cluster bus): both
# must be free, and both below the ephemeral range.
free_cluster_port() { # VAR
	local cand i
	for ((i = 0; i < 1000; i++)); do
		free_port cand # (free_port's own local is p)
		((cand + 10000 <= PORT_HI)) || continue
		[[ $TAKEN == *" $((cand + 10000)) "* ]] && continue
		if ! port_busy $((cand + 10000)); then
			TAKEN+="$((cand + 10000)) "
			printf -v "$1" %s "$cand"
			return
		fi
	done
	die "no free port pair (port, port + 10000) below $PORT_HI for a Cluster node"
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
echo "  settings:  DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS QUICK=$QUICK FLAT_DURATION=$FLAT_DURATION REDIS_CORE=$REDIS_CORE"
echo "             MIX_N=$MIX_N MIX_S=$MIX_S MIX_FRESH_PCT=$MIX_FRESH_PCT MIX_MAX_RPS=$MIX_MAX_RPS IDLE_SECONDS=$IDLE_SECONDS"
echo "building authgate and helpers..."
(
	cd "$ROOT"
	go build -o "$W/bin/authgate" ./cmd/authgate
	go build -o "$W/bin/" ./bench/load/upstream ./bench/load/sessions ./bench/load/token ./bench/load/warm
) || die "build failed"

# ---------------------------------------------------------------- redis, upstream

free_port RPORT
start redis "${RPIN[@]}" redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$W" --logfile "" --databases 1
wait_port "$RPORT" "$PID_redis" redis-server
rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
for i in $(seq 50); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done

free_port UPORT
start upstream "${SPIN[@]}" "$W/bin/upstream" -addr "127.0.0.1:$UPORT"
wait_port "$UPORT" "$PID_upstream" upstream

# ---------------------------------------------------------------- sentinel, cluster

# The same topologies as authcore/store/storetest/topology.go, throwaway and
# on the server CPU with the rest of the server side.
pcli() { local p=$1; shift; redis-cli -h 127.0.0.1 -p "$p" "$@" 2>/dev/null | tr -d '\r'; }
wait_pong() { # PORT PID NAME
	local i
	wait_port "$1" "$2" "$3"
	for i in $(seq 100); do [ "$(pcli "$1" ping)" = PONG ] && return 0; sleep 0.1; done
	die "$3 on port $1 does not answer PING"
}
# wait_for SECONDS WHAT CMD...: until CMD succeeds
wait_for() {
	local t=$1 what=$2 i
	shift 2
	for ((i = 0; i < t * 10; i++)); do "$@" && return 0; sleep 0.1; done
	die "$what not ready within ${t}s"
}
# data_node NAME PORT DIR [ARGS...]: a redis-server on 127.0.0.1 without persistence
data_node() {
	local name=$1 port=$2 dir=$3
	shift 3
	start "$name" "${RPIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$dir" --logfile "" --loglevel warning --repl-diskless-sync yes --repl-diskless-sync-delay 0 "$@"
	local pid_var="PID_$name"
	wait_pong "$port" "${!pid_var}" "$name"
}

echo "starting Sentinel (primary, replica, 3 sentinels) and Cluster (3 masters)..."
mkdir -p "$W/sentinel" "$W/replica" "$W/cluster"

# Sentinel: a primary, one replica of it, three sentinels (quorum 2).
SENTINEL_MASTER=authgate
free_port S_PPORT
free_port S_RPORT
data_node sprimary "$S_PPORT" "$W/sentinel"
data_node sreplica "$S_RPORT" "$W/replica" --replicaof 127.0.0.1 "$S_PPORT"
replica_up() { [ "$(pcli "$S_RPORT" INFO replication | awk -F: '$1 == "master_link_status" { print $2 }')" = up ]; }
wait_for 30 "sentinel replica (in sync)" replica_up
if command -v redis-sentinel >/dev/null; then
	SENTINEL_CMD=(redis-sentinel) SENTINEL_ARG=()
else
	SENTINEL_CMD=(redis-server) SENTINEL_ARG=(--sentinel)
fi
S_PORTS=()
for i in 1 2 3; do
	free_port sp
	# Sentinel rewrites its config file: each gets a fresh one.
	cat >"$W/sentinel/sentinel-$i.conf" <<SENTINEL_CONF
port $sp
bind 127.0.0.1
dir $W/sentinel
daemonize no
logfile ""
loglevel warning
sentinel resolve-hostnames no
sentinel monitor $SENTINEL_MASTER 127.0.0.1 $S_PPORT 2
sentinel down-after-milliseconds $SENTINEL_MASTER 2000
sentinel failover-timeout $SENTINEL_MASTER 10000
sentinel parallel-syncs $SENTINEL_MASTER 1
SENTINEL_CONF
	start "sentinel$i" "${RPIN[@]}" "${SENTINEL_CMD[@]}" "$W/sentinel/sentinel-$i.conf" "${SENTINEL_ARG[@]}"
	pid_var="PID_sentinel$i"
	wait_pong "$sp" "${!pid_var}" "sentinel $i"
	S_PORTS+=("$sp")
done
sentinel_ready() { # PORT: knows the primary, its replica and the two other sentinels
	pcli "$1" SENTINEL MASTER "$SENTINEL_MASTER" | paste - - |
		awk -F'\t' '{ m[$1] = $2 } END { exit !(m["flags"] == "master" && m["num-slaves"] == 1 && m["num-other-sentinels"] == 2) }'
}
for sp in "${S_PORTS[@]}"; do wait_for 30 "sentinel on port $sp" sentinel_ready "$sp"; done
SENTINEL_URL="redis-sentinel://127.0.0.1:${S_PORTS[0]},127.0.0.1:${S_PORTS[1]},127.0.0.1:${S_PORTS[2]}/0?master=$SENTINEL_MASTER"

# Cluster: three masters, a third of the slots each, joined with CLUSTER MEET.
K_PORTS=()
K_PIDS=()
for i in 1 2 3; do
	free_cluster_port kp
	data_node "cnode$i" "$kp" "$W/cluster" --cluster-enabled yes --cluster-config-file "$W/cluster/nodes-$i.conf" \
		--cluster-node-timeout 15000 --cluster-announce-ip 127.0.0.1
	pid_var="PID_cnode$i"
	K_PORTS+=("$kp")
	K_PIDS+=("${!pid_var}")
done
for i in 0 1 2; do
	lo=$((i * 16384 / 3))
	hi=$(((i + 1) * 16384 / 3 - 1))
	kp=${K_PORTS[$i]}
	# Distinct config epochs, as redis-cli --cluster create sets them.
	[ "$(pcli "$kp" CLUSTER SET-CONFIG-EPOCH $((i + 1)))" = OK ] || die "CLUSTER SET-CONFIG-EPOCH on :$kp failed"
	if [ "$(pcli "$kp" CLUSTER ADDSLOTSRANGE "$lo" "$hi")" != OK ]; then
		# ADDSLOTSRANGE is Redis 7.0; older servers take the list.
		# shellcheck disable=SC2046 # one word per slot
		[ "$(pcli "$kp" CLUSTER ADDSLOTS $(seq "$lo" "$hi"))" = OK ] || die "CLUSTER ADDSLOTS on :$kp failed"
	fi
done
for kp in "${K_PORTS[@]:1}"; do
	[ "$(pcli "${K_PORTS[0]}" CLUSTER MEET 127.0.0.1 "$kp")" = OK ] || die "CLUSTER MEET 127.0.0.1 $kp failed"
done
cluster_ready() { # PORT
	pcli "$1" CLUSTER INFO | awk -F: '{ m[$1] = $2 }
		END { exit !(m["cluster_state"] == "ok" && m["cluster_known_nodes"] == 3 && m["cluster_size"] == 3 && m["cluster_slots_ok"] == 16384) }'
}
for kp in "${K_PORTS[@]}"; do wait_for 30 "cluster node on port $kp" cluster_ready "$kp"; done
CLUSTER_URL="redis-cluster://127.0.0.1:${K_PORTS[0]},127.0.0.1:${K_PORTS[1]},127.0.0.1:${K_PORTS[2]}"
echo "  sentinel: primary :$S_PPORT, replica :$S_RPORT, sentinels :${S_PORTS[*]} (quorum 2, down-after 2s), ${SENTINEL_CMD[*]}"
echo "  cluster:  masters :${K_PORTS[*]}, cluster_state:ok on all"

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

globals() { # [authgate store line] [admin port, with PROFILE]
	local admin="admin off"
	[ -n "$PROFILE" ] && [ -n "${2:-}" ] && admin="admin 127.0.0.1:$2"
	cat <<EOF
{
	$admin
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
free_port BHPORT
free_port MPORT
free_port GPORT
free_port SGPORT
free_port KGPORT
for g in bare memory redis sentinel cluster; do free_port "ADMIN_$g"; done

# Bare: the same route shape as the guarded configs, no authgate anywhere.
{
	globals "" "$ADMIN_bare"
	cat <<EOF
:$BPORT {
	bind 127.0.0.1
	handle /api/* {
		reverse_proxy 127.0.0.1:$UPORT
	}
}
# bare-headers (reference only, ONLY=bare-headers): bare plus six static
# headers shaped like the guard's identity headers, to show what carrying
# them (reverse_proxy's request log, the upstream's parsing) costs alone.
:$BHPORT {
	bind 127.0.0.1
	handle /api/* {
		reverse_proxy 127.0.0.1:$UPORT {
			header_up X-Authgate-Credentials-Id 1001
			header_up X-Authgate-Credentials-Type ROOT
			header_up X-Authgate-Identity-Id 2001
			header_up X-Authgate-Identity-Type CONSUMER
			header_up X-Authgate-Stepped-Up false
			header_up X-Authgate-Auth-Time 1796230000
		}
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
{ globals memory "$ADMIN_memory"; guarded_site "$MPORT" 0; } >"$W/memory.Caddyfile"
{ globals "redis redis://127.0.0.1:$RPORT/0" "$ADMIN_redis"; guarded_site "$GPORT" 1; } >"$W/redis.Caddyfile"
{ globals "redis $SENTINEL_URL" "$ADMIN_sentinel"; guarded_site "$SGPORT" 0; } >"$W/sentinel.Caddyfile"
{ globals "redis $CLUSTER_URL" "$ADMIN_cluster"; guarded_site "$KGPORT" 0; } >"$W/cluster.Caddyfile"

for g in bare memory redis sentinel cluster; do
	"$W/bin/authgate" validate --config "$W/$g.Caddyfile" --adapter caddyfile >"$W/log/validate-$g.log" 2>&1 ||
		{ cat "$W/log/validate-$g.log" >&2; die "$g.Caddyfile does not validate"; }
done
start bare "${SPIN[@]}" "$W/bin/authgate" run --config "$W/bare.Caddyfile" --adapter caddyfile
start memory "${SPIN[@]}" "$W/bin/authgate" run --config "$W/memory.Caddyfile" --adapter caddyfile
start redisgw "${SPIN[@]}" "$W/bin/authgate" run --config "$W/redis.Caddyfile" --adapter caddyfile
start sentinelgw "${SPIN[@]}" "$W/bin/authgate" run --config "$W/sentinel.Caddyfile" --adapter caddyfile
start clustergw "${SPIN[@]}" "$W/bin/authgate" run --config "$W/cluster.Caddyfile" --adapter caddyfile
wait_port "$BPORT" "$PID_bare" "bare gateway"
wait_port "$MPORT" "$PID_memory" "memory gateway"
wait_port "$GPORT" "$PID_redisgw" "redis gateway"
wait_port "$SGPORT" "$PID_sentinelgw" "sentinel gateway"
wait_port "$KGPORT" "$PID_clustergw" "cluster gateway"

# ---------------------------------------------------------------- tokens, sanity

MEM_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$MPORT/multi") || die "memory gateway: no token"
RED_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$GPORT/multi") || die "redis gateway: no token"
STEP_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$GPORT/multi" -stepup) || die "redis gateway: no stepped-up token"
SEN_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$SGPORT/multi") || die "sentinel gateway: no token"
CLU_TOKEN=$("${CPIN[@]}" "$W/bin/token" -url "http://127.0.0.1:$KGPORT/multi") || die "cluster gateway: no token"

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
URL_BAREH="http://127.0.0.1:$BHPORT/api/bench"
URL_MEM="http://127.0.0.1:$MPORT/api/bench"
URL_RED="http://127.0.0.1:$GPORT/api/bench"
URL_STEP="http://127.0.0.1:$GPORT/pay/bench"
URL_SEN="http://127.0.0.1:$SGPORT/api/bench"
URL_CLU="http://127.0.0.1:$KGPORT/api/bench"
expect 200 "$URL_BARE"
expect 401 "$URL_MEM"
expect 200 "$URL_MEM" "$MEM_TOKEN"
expect 401 "$URL_RED"
expect 200 "$URL_RED" "$RED_TOKEN"
expect 403 "$URL_STEP" "$RED_TOKEN"
expect 200 "$URL_STEP" "$STEP_TOKEN"
expect 401 "$URL_SEN"
expect 200 "$URL_SEN" "$SEN_TOKEN"
expect 401 "$URL_CLU"
expect 200 "$URL_CLU" "$CLU_TOKEN"
# A token of one store is not a session of another.
expect 401 "$URL_SEN" "$RED_TOKEN"
expect 401 "$URL_CLU" "$RED_TOKEN"
if [ -n "$PROFILE" ]; then
	mkdir -p "$PROFILE"
	PROFILE=$(cd "$PROFILE" && pwd)
	echo "gateways up: bare, memory, redis, sentinel, cluster (admin API on for PROFILE, no access log, runtime log level WARN)"
else
	echo "gateways up: bare, memory, redis, sentinel, cluster (admin off, no access log, runtime log level WARN)"
fi
echo "sanity checks passed (401 without token, 403 before step-up, 200 with; 401 with another store's token)"

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
cpu_ticks_sum() { local p t=0; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }

# The Redis data nodes the next measure reads commandstats and CPU from:
# the standalone redis-server unless a configuration says otherwise
# (sentinel: the primary, and the replica's CPU; cluster: the three masters).
MR_PORTS=$RPORT
MR_CPU_PIDS=$PID_redis
cmdstats() {
	local p
	for p in $MR_PORTS; do redis-cli -h 127.0.0.1 -p "$p" INFO commandstats; done | tr -d '\r' |
		awk -F'[:,=]' '/^cmdstat_/ && $1 != "cmdstat_info" { s[substr($1, 9)] += $3 } END { for (k in s) print k, s[k] }' | sort
}

# measure PID URL CONNS THREADS DURATION [TOKEN | @TOKENFILE | mix:SLICE]
# Sets M_REQ M_RPS M_P50 M_P99 (µs), M_CPU M_UCPU M_RCPU (gateway, upstream, redis-server CPU µs per
# request), M_CMDS (Redis commands per request), M_BREAK, M_NON2XX, M_SOCKERR, M_BEATS (PING + ROLE
# heartbeats per second of the run), M_GWPCT (gateway CPU as % of a core during the run) and, for mix,
# M_MIX (requests sent, fresh logins sent, fresh-pool shortfall, distinct hot sessions).
measure() {
	local pid=$1 url=$2 conns=$3 threads=$4 dur=$5 tok=${6:-}
	local args=(-c "$conns" -t "$threads" -d "$dur" --latency --timeout 5s)
	M_MIX=
	if [[ $tok == @* ]]; then
		args+=(-s "$W/tokens.lua" "$url" -- "${tok#@}")
	elif [[ $tok == mix:* ]]; then
		# The same stream for every run of one slice: same seed, same pool.
		args+=(-s "$ROOT/bench/load/mix.lua" "$url" -- "$W/mix-hot.txt" "$W/fresh-${tok#mix:}.txt" "$threads" \
			"$MIX_FRESH_PCT" "$MIX_S" "$((${tok#mix:} + 1))")
	elif [ -n "$tok" ]; then
		args+=(-s "$W/report.lua" -H "Authorization: Bearer $tok" "$url")
	else
		args+=(-s "$W/report.lua" "$url")
	fi
	alive "$pid" gateway
	local c0 r0 u0 c1 r1 u1
	cmdstats >"$W/cs0"
	c0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2086 # a list of pids
	r0=$(cpu_ticks_sum $MR_CPU_PIDS)
	u0=$(cpu_ticks "$PID_upstream")
	"${CPIN[@]}" wrk "${args[@]}" >"$W/wrk.out" 2>&1 &
	WRK_PID=$!
	wait "$WRK_PID" || { cat "$W/wrk.out" >&2; die "wrk failed"; }
	WRK_PID=
	c1=$(cpu_ticks "$pid")
	# shellcheck disable=SC2086
	r1=$(cpu_ticks_sum $MR_CPU_PIDS)
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
		M_RPS=0 M_CPU=0 M_RCPU=0 M_UCPU=0 M_CMDS=0 M_BREAK= M_BEATS=0 M_GWPCT=0
		return 0
	fi
	if [[ $tok == mix:* ]]; then
		M_MIX=$(awk '/^MIX / { print $2, $3, $4, $5 }' "$W/wrk.out")
		local short
		short=$(echo "$M_MIX" | awk '{ print $3 }')
		if [ "${short:-0}" -gt 0 ]; then
			echo "  warning: the fresh-token pool ran short by $short requests (they got a Zipf token); raise MIX_MAX_RPS" >&2
			ERRORS+="  $url: fresh-login pool short by $short requests (raise MIX_MAX_RPS)"$'\n'
		fi
	fi
	M_RPS=$(awk -v n="$M_REQ" -v d="$dur_us" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
	M_CPU=$(awk -v a="$c0" -v b="$c1" -v n="$M_REQ" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
	M_RCPU=$(awk -v a="$r0" -v b="$r1" -v n="$M_REQ" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
	M_UCPU=$(awk -v a="$u0" -v b="$u1" -v n="$M_REQ" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) * 1e6 / t / n }')
	M_CMDS=$(awk -v n="$M_REQ" 'NR == FNR { a[$1] = $2; next } { s += $2 - a[$1] } END { printf "%.3f", s / n }' "$W/cs0" "$W/cs1")
	M_BREAK=$(awk -v n="$M_REQ" 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d > 0) printf "%s%s=%.3f", (k++ ? " " : ""), $1, d / n }' "$W/cs0" "$W/cs1")
	M_BEATS=$(awk -v d="$dur_us" 'NR == FNR { a[$1] = $2; next } $1 == "ping" || $1 == "role" { s += $2 - a[$1] } END { printf "%.0f", s / (d / 1e6) }' "$W/cs0" "$W/cs1")
	M_GWPCT=$(awk -v a="$c0" -v b="$c1" -v d="$dur_us" -v t="$CLK_TCK" 'BEGIN { printf "%.1f", (b - a) / t / (d / 1e6) * 100 }')
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
	[ -n "$M_MIX" ] && printf '  {%s fresh logins, %s distinct sessions}' "$(echo "$M_MIX" | awk '{ print $2 }')" \
		"$(echo "$M_MIX" | awk '{ print $4 }')"
	[ "$M_NON2XX" -gt 0 ] || [ "$M_SOCKERR" -gt 0 ] && printf '  ERRORS: %s non-2xx, %s socket' "$M_NON2XX" "$M_SOCKERR"
	echo
}

# median FILE COLUMN [FILTER-COLUMN VALUE]
median() {
	awk -v c="$2" -v fc="${3:-0}" -v fv="${4:-}" 'fc == 0 || $fc == fv { print $c }' "$1" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# spread CFG: "lowest-highest" bracketed ratio (column 14) of CFG over the rounds.
spread() {
	awk -F'\t' -v c="$1" '$2 == c && $14 != "" { if (n++ == 0 || $14 < lo) lo = $14; if ($14 > hi) hi = $14 }
		END { if (n) printf "%.2f-%.2f", lo, hi; else print "-" }' "$W/rounds.tsv"
}

# Every configuration gets the same request: clients send their token
# whether or not a guard checks it, and a bare reverse_proxy forwards it
# like any header, so the ratio measures the guard's own work, not the
# token's bytes. "bare-notoken" (the same bare proxy, no Authorization
# header) shows what the header alone costs; it is reported, not used in
# any ratio. "bare-control" is bare itself, measured like a configuration:
# its ratio would be 1.00 on a quiet machine, and how far its rounds stray
# from that is the noise every other ratio carries.
#
# "mix" is the redis gateway under realistic traffic (mix.lua): MIX_N live
# sessions, tokens drawn with a Zipf skew, MIX_FRESH_PCT% of requests a
# fresh login. The bare run paired with it ("bare:mix") gets the same token
# stream.
CONFIGS=(bare memory redis redis+stepup sentinel cluster mix bare-control bare-notoken)
# Each configuration runs between two bare runs, and its ratio is to
# their mean (the bare run after the mix gets the mix's token stream too).
PAIRED=(bare memory bare redis bare redis+stepup bare sentinel bare cluster bare:mix mix bare:mix bare-control bare
	bare-notoken)
declare -A C_PID=([bare]=$PID_bare [memory]=$PID_memory [redis]=$PID_redisgw [redis+stepup]=$PID_redisgw
	[sentinel]=$PID_sentinelgw [cluster]=$PID_clustergw [mix]=$PID_redisgw [bare-notoken]=$PID_bare
	[bare-headers]=$PID_bare [bare-control]=$PID_bare)
declare -A C_URL=([bare]=$URL_BARE [memory]=$URL_MEM [redis]=$URL_RED [redis+stepup]=$URL_STEP
	[sentinel]=$URL_SEN [cluster]=$URL_CLU [mix]=$URL_RED [bare-notoken]=$URL_BARE [bare-headers]=$URL_BAREH
	[bare-control]=$URL_BARE)
declare -A C_TOK=([bare]=$RED_TOKEN [memory]=$MEM_TOKEN [redis]=$RED_TOKEN [redis+stepup]=$STEP_TOKEN
	[sentinel]=$SEN_TOKEN [cluster]=$CLU_TOKEN [mix]=mix [bare-notoken]="" [bare-headers]=$RED_TOKEN
	[bare-control]=$RED_TOKEN)
# Data nodes per configuration: commandstats from C_RPORTS, CPU from C_RPIDS.
declare -A C_RPORTS=([sentinel]=$S_PPORT [cluster]="${K_PORTS[*]}")
declare -A C_RPIDS=([sentinel]="$PID_sprimary $PID_sreplica" [cluster]="${K_PIDS[*]}")
# ONLY="cluster redis ..." measures just those configurations, in that order
# (a name may repeat), each between two bare runs.
if [ -n "${ONLY:-}" ]; then
	PAIRED=(bare)
	for cfg in $ONLY; do
		[ -n "${C_PID[$cfg]:-}" ] && [ "$cfg" != bare ] || die "ONLY: unknown configuration $cfg"
		if [ "$cfg" = mix ]; then PAIRED+=(bare:mix mix bare:mix); else PAIRED+=("$cfg" bare); fi
	done
	CONFIGS=(bare)
	for cfg in $ONLY; do [[ " ${CONFIGS[*]} " == *" $cfg "* ]] || CONFIGS+=("$cfg"); done
fi

# run_cfg CFG[:TOKEN-CFG] CONNS THREADS DURATION SLICE: measure CFG, with the
# request (token) of TOKEN-CFG; a mix request uses fresh-token slice SLICE.
run_cfg() {
	local cfg=${1%%:*} tcfg=${1#*:} tok
	tok=${C_TOK[$tcfg]}
	[ "$tok" = mix ] && tok="mix:$5"
	MR_PORTS=${C_RPORTS[$cfg]:-$RPORT}
	MR_CPU_PIDS=${C_RPIDS[$cfg]:-$PID_redis}
	measure "${C_PID[$cfg]}" "${C_URL[$cfg]}" "$2" "$3" "$4" "$tok"
	MR_PORTS=$RPORT
	MR_CPU_PIDS=$PID_redis
}

# Seconds in a wrk duration (2s, 1m, 1h, or a bare number of seconds).
secs() {
	case $1 in
	*ms) awk -v v="${1%ms}" 'BEGIN { print v / 1000 }' ;;
	*s) echo "${1%s}" ;;
	*m) awk -v v="${1%m}" 'BEGIN { print v * 60 }' ;;
	*h) awk -v v="${1%h}" 'BEGIN { print v * 3600 }' ;;
	*) echo "$1" ;;
	esac
}

# The mix row's sessions: MIX_N hot ones with a token each (line k of
# mix-hot.txt is Zipf rank k), and a pool of fresh ones, never read by any
# gateway, cut into one slice per run that sends mix requests (slice 0 for
# the warm-up, slice r for round r; the bare run of a round uses the same
# slice as the mix run after it: bare reads no session, so they are still
# fresh when the redis gateway sees them). Both fills are removed again after
# the rounds, before the flat-cost section counts sessions.
echo
FRESH_PER_RUN=$(awk -v p="$MIX_FRESH_PCT" -v r="$MIX_MAX_RPS" -v d="$(secs "$DURATION")" -v w="$(secs "$WARMUP")" \
	'BEGIN { if (w > d) d = w; n = int(p / 100 * r * d + 0.999); print (n < 100 ? 100 : n) }')
FRESH_TOTAL=$((FRESH_PER_RUN * (ROUNDS + 1)))
echo "mix row: filling Redis with $MIX_N live sessions (Zipf s=$MIX_S) and $FRESH_TOTAL fresh ones ($FRESH_PER_RUN per run):"
"${CPIN[@]}" "$W/bin/sessions" -addr "127.0.0.1:$RPORT" -n "$MIX_N" -tokens "$W/mix-hot.txt" -ntokens "$MIX_N" \
	-key "$KEY" -ids "$W/mix-ids.txt" || die "mix session fill failed"
"${CPIN[@]}" "$W/bin/sessions" -addr "127.0.0.1:$RPORT" -n "$FRESH_TOTAL" -tokens "$W/fresh.txt" -ntokens "$FRESH_TOTAL" \
	-key "$KEY" -ids "$W/fresh-ids.txt" || die "fresh session fill failed"
split -d -a 3 -l "$FRESH_PER_RUN" "$W/fresh.txt" "$W/fresh-part-"
for ((r = 0; r <= ROUNDS; r++)); do mv "$W/fresh-part-$(printf %03d "$r")" "$W/fresh-$r.txt"; done
expect 200 "$URL_RED" "$(head -n1 "$W/mix-hot.txt")"
# The mix's live sessions are live: a gateway that has run for a while has
# verified each one's token once and read it once. One request per hot
# token gets the redis gateway there before it is measured (a token's
# first verification is what the cold-token row measures). Fresh logins
# stay unread.
echo "mix row: one request per live session through the redis gateway, as a gateway that has run a while has seen them:"
"${CPIN[@]}" "$W/bin/warm" -url "$URL_RED" -tokens "$W/mix-hot.txt" -c "$CONNS" || die "warming the mix sessions failed"

echo
echo "warm-up: $WARMUP per configuration"
for cfg in "${CONFIGS[@]}"; do
	run_cfg "$cfg" "$CONNS" "$THREADS" "$WARMUP" 0
	line64 "$cfg" "-"
done

: >"$W/rounds.tsv"
: >"$W/conn1.tsv"
# CPU steal (time the hypervisor gave this machine's CPUs to someone else)
# over the rounds, per pinned core: on a shared host it is the noise the
# ratios carry.
cpu_stat() { awk -v c="cpu$1" '$1 == c { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
if [ "${#CPU_LIST[@]}" -ge 2 ]; then
	read -r STEAL0_S TOTAL0_S <<<"$(cpu_stat "${CPU_LIST[1]}")"
	read -r STEAL0_C TOTAL0_C <<<"$(cpu_stat "${CPU_LIST[0]}")"
fi
for ((r = 1; r <= ROUNDS; r++)); do
	echo
	echo "round $r/$ROUNDS: $CONNS connections, $DURATION each"
	bare_rps=
	# Paired: bare runs right before each other configuration and that
	# configuration's ratio is to this bare run. This machine's speed drifts
	# by +-20% over minutes (the upstream, doing the same work in every
	# run, shows it), so a ratio to a bare run further away measures the
	# drift as much as the guard.
	n=0
	for entry in "${PAIRED[@]}"; do
		cfg=${entry%%:*}
		n=$((n + 1))
		prof_pid=
		if [ -n "$PROFILE" ] && [ "$r" = 1 ]; then
			# The gateway's own pprof, for all but the run's last second.
			declare -A ADMIN_OF=([bare]=$ADMIN_bare [memory]=$ADMIN_memory [redis]=$ADMIN_redis [redis+stepup]=$ADMIN_redis
				[sentinel]=$ADMIN_sentinel [cluster]=$ADMIN_cluster [mix]=$ADMIN_redis [bare-notoken]=$ADMIN_bare
				[bare-headers]=$ADMIN_bare [bare-control]=$ADMIN_bare)
			psecs=$(awk -v d="$(secs "$DURATION")" 'BEGIN { s = int(d) - 1; print (s < 1 ? 1 : s) }')
			"${CPIN[@]}" curl -s -o "$PROFILE/r1-$(printf %02d "$n")-$cfg.pprof" \
				"http://127.0.0.1:${ADMIN_OF[$cfg]}/debug/pprof/profile?seconds=$psecs" &
			prof_pid=$!
		fi
		run_cfg "$entry" "$CONNS" "$THREADS" "$DURATION" "$r"
		[ -n "$prof_pid" ] && { wait "$prof_pid" || echo "  warning: no CPU profile of $cfg" >&2; }
		# Core-time estimate: the server core's CPU per request (gateway +
		# upstream + redis-server) of bare over this configuration's. Less
		# sensitive than req/s to other load on the machine.
		total=$(awk -v a="$M_CPU" -v b="$M_UCPU" -v c="$M_RCPU" 'BEGIN { print a + b + c }')
		if [ "$cfg" = bare ]; then bare_rps=$M_RPS bare_total=$total; fi
		x=$(ratio "$M_RPS" "$bare_rps")
		line64 "$cfg" "$x"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$M_RPS" "$M_P50" "$M_P99" "$M_CPU" "$M_RCPU" \
			"$M_CMDS" "$x" "$M_UCPU" "$(ratio "$bare_total" "$total")" "$M_BEATS" "$M_GWPCT" >>"$W/rounds.tsv"
		# Heartbeat share: the Go side knows the CPU cost of one heartbeat;
		# this gives how many the busy standalone gateway sends and its CPU.
		if [ "$cfg" = redis ]; then
			echo "  heartbeats: $M_BEATS/s, gateway CPU $M_GWPCT% (redis, this run; PING+ROLE from INFO commandstats)"
		fi
	done
	# Bracketed ratios: each configuration over the mean of the bare runs
	# right before and right after it (the one before alone when none
	# follows), which cancels the machine's drift over the pair to first
	# order; appended to this round's rows as column 14.
	awk -F'\t' -v OFS='\t' -v r="$r" '
		{ row[NR] = $0; round[NR] = $1; cfg[NR] = $2; rps[NR] = $3 }
		END {
			for (i = 1; i <= NR; i++) {
				x = ""
				if (round[i] == r && cfg[i] != "bare" && split(row[i], f, "\t") == 13) {
					b = i > 1 && cfg[i - 1] == "bare" ? rps[i - 1] : 0
					a = i < NR && cfg[i + 1] == "bare" && round[i + 1] == r ? rps[i + 1] : 0
					m = (b > 0 && a > 0) ? (a + b) / 2 : b
					x = m > 0 ? sprintf("%.2f", rps[i] / m) : "0.00"
				} else if (round[i] == r && cfg[i] == "bare" && split(row[i], f, "\t") == 13) {
					x = "1.00"
				}
				print (x == "" ? row[i] : row[i] OFS x)
			}
		}' "$W/rounds.tsv" >"$W/rounds.tmp" && mv "$W/rounds.tmp" "$W/rounds.tsv"
	printf '  bracketed (over the mean of the bare runs before and after):'
	awk -F'\t' -v r="$r" '$1 == r && $2 != "bare" { printf " %s x%s", $2, $14 }' "$W/rounds.tsv"
	echo
	echo "round $r/$ROUNDS: 1 connection, $DURATION each"
	for cfg in bare redis; do
		run_cfg "$cfg" 1 1 "$DURATION" "$r"
		printf '  %-14s %8s req/s  p50 %6s µs  p99 %6s µs  gw %6s µs/req  %6s redis cmd/req\n' \
			"$cfg" "$M_RPS" "$M_P50" "$M_P99" "$M_CPU" "$M_CMDS"
		printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$cfg" "$M_P50" "$M_P99" "$M_RPS" >>"$W/conn1.tsv"
	done
done

STEAL_LINE=
if [ "${#CPU_LIST[@]}" -ge 2 ]; then
	read -r STEAL1_S TOTAL1_S <<<"$(cpu_stat "${CPU_LIST[1]}")"
	read -r STEAL1_C TOTAL1_C <<<"$(cpu_stat "${CPU_LIST[0]}")"
	STEAL_LINE=$(awk -v a="$STEAL0_S" -v b="$STEAL1_S" -v t0="$TOTAL0_S" -v t1="$TOTAL1_S" \
		-v c="$STEAL0_C" -v d="$STEAL1_C" -v u0="$TOTAL0_C" -v u1="$TOTAL1_C" \
		'BEGIN { s = t1 > t0 ? (b - a) * 100 / (t1 - t0) : 0; k = u1 > u0 ? (d - c) * 100 / (u1 - u0) : 0
		printf "server core %.1f%%, client core %.1f%%", s, k }')
fi

# Per-round 1-connection overheads (redis minus bare, same round).
awk -F'\t' '$2 == "bare" { b50[$1] = $3; b99[$1] = $4 } $2 == "redis" { r50[$1] = $3; r99[$1] = $4 }
	END { for (r in r50) print r, r50[r] - b50[r], r99[r] - b99[r] }' "$W/conn1.tsv" >"$W/overhead.txt"

# ---------------------------------------------------------------- idle CPU

# Every gateway now sits idle (no client at all) for IDLE_SECONDS: a
# stream stops its heartbeat 100 ms after its last request, so an idle
# gateway should cost next to nothing. The first second is let go by.
echo
echo "idle: $IDLE_SECONDS s without any request (CPU counted in ticks of 1/$CLK_TCK s)"
IDLE_GWS=(redis sentinel cluster memory bare)
declare -A IDLE_PID=([redis]=$PID_redisgw [sentinel]=$PID_sentinelgw [cluster]=$PID_clustergw [memory]=$PID_memory [bare]=$PID_bare)
declare -A IDLE_T0=()
sleep 1
for g in "${IDLE_GWS[@]}"; do IDLE_T0[$g]=$(cpu_ticks "${IDLE_PID[$g]}"); done
w0=$(date +%s%N)
sleep "$IDLE_SECONDS"
w1=$(date +%s%N)
: >"$W/idle.txt"
for g in "${IDLE_GWS[@]}"; do
	alive "${IDLE_PID[$g]}" "$g gateway"
	t1=$(cpu_ticks "${IDLE_PID[$g]}")
	awk -v g="$g" -v a="${IDLE_T0[$g]}" -v b="$t1" -v t="$CLK_TCK" -v w="$((w1 - w0))" 'BEGIN {
		c = (b - a) / t; pct = c / (w / 1e9) * 100
		ref = (g == "memory" || g == "bare") ? "  (reference)" : (pct < 0.5 ? "  ok" : "  ABOVE TARGET")
		printf "  %-8s %6.2f CPU s over %5.1f s idle = %5.2f%% of a core (target < 0.5%%)%s\n", g, c, w / 1e9, pct, ref
	}' | tee -a "$W/idle.txt"
done

# The mix row's sessions go, so the flat-cost section below counts only its own.
echo
echo "removing the mix row's sessions:"
cat "$W/mix-ids.txt" "$W/fresh-ids.txt" >"$W/mix-all-ids.txt"
"${CPIN[@]}" "$W/bin/sessions" -addr "127.0.0.1:$RPORT" -unlink "$W/mix-all-ids.txt" || die "removing the mix sessions failed"

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
echo "median over $ROUNDS round(s), $CONNS connections, $DURATION per run; ratio = req/s / req/s of the bare runs around it"
printf '  %-14s %7s %9s %10s %10s %9s %12s %14s %8s %11s %9s %9s\n' config "req/s" p50 p99 "gw µs/req" "upstream" "redis-server" "redis cmd/req" "x bare" "(rounds)" "x before" "x bare*"
for cfg in "${CONFIGS[@]}"; do
	printf '  %-14s %7.0f %9s %10s %10.1f %9.1f %12.1f %14.3f %8.2f %11s %9.2f %9.2f\n' "$cfg" \
		"$(median "$W/rounds.tsv" 3 2 "$cfg")" "$(ms "$(median "$W/rounds.tsv" 4 2 "$cfg")")" \
		"$(ms "$(median "$W/rounds.tsv" 5 2 "$cfg")")" "$(median "$W/rounds.tsv" 6 2 "$cfg")" \
		"$(median "$W/rounds.tsv" 10 2 "$cfg")" "$(median "$W/rounds.tsv" 7 2 "$cfg")" \
		"$(median "$W/rounds.tsv" 8 2 "$cfg")" "$(median "$W/rounds.tsv" 14 2 "$cfg")" "$(spread "$cfg")" \
		"$(median "$W/rounds.tsv" 9 2 "$cfg")" "$(median "$W/rounds.tsv" 11 2 "$cfg")"
done
echo "  x bare  = req/s over the mean req/s of the bare runs right before and right after it, in the same round (the"
echo "            spec's measure, side by side in one run; what the last lines report); every configuration, bare"
echo "            included, gets the same request with its Authorization header; bare-notoken is bare without that"
echo "            header, for reference only"
echo "  (rounds) = the lowest and highest x bare of the rounds; bare-control is bare measured like a configuration:"
echo "            its spread is the machine's noise"
echo "  x before = req/s over the bare run just before only (the measure of earlier reports)"
echo "  x bare* = estimate from CPU time on the server core: (gw+upstream+redis-server µs/req of that bare run) / (same"
echo "            of the configuration)"
echo "  redis-server = the data nodes: sentinel's primary + replica (sentinels not counted), cluster's three masters"
echo "  sentinel, cluster: the redis config's /api route on those topologies; mix: the redis gateway with $MIX_N live"
echo "            sessions, Zipf s=$MIX_S, $MIX_FRESH_PCT% fresh logins (first request of an unread session), bare given"
echo "            the same token stream"
echo "  targets: every guarded x bare >= 0.90; <= 1 Redis round trip (here: command) per guarded request"
echo
echo "heartbeats (redis, median over the rounds' 64-connection runs): $(median "$W/rounds.tsv" 12 2 redis)/s," \
	"gateway CPU $(median "$W/rounds.tsv" 13 2 redis)%; sentinel $(median "$W/rounds.tsv" 12 2 sentinel)/s," \
	"cluster $(median "$W/rounds.tsv" 12 2 cluster)/s (ROLE)"
echo "  (heartbeat share of the busy gateway's CPU = heartbeats/s x CPU per heartbeat (Go benchmark) / gateway CPU;"
echo "  target < 2%)"
echo
if [ -n "$STEAL_LINE" ]; then echo "CPU steal during the rounds (hypervisor time given to others): $STEAL_LINE"; echo; fi
echo "idle CPU ($IDLE_SECONDS s, no requests; target < 0.5% of a core):"
cat "$W/idle.txt"
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
for g in memory redisgw sentinelgw clustergw; do
	n=$(grep -c '"level":"error"' "$W/log/$g.log" || true)
	[ "$n" -eq 0 ] || { echo "  $g gateway logged $n error lines, e.g.:"; grep -m3 '"level":"error"' "$W/log/$g.log" | cut -c1-300 | sed 's/^/    /'; }
done
now_master=$(pcli "${S_PORTS[0]}" SENTINEL GET-MASTER-ADDR-BY-NAME "$SENTINEL_MASTER" | paste -sd: -) || true
[ "$now_master" = "127.0.0.1:$S_PPORT" ] ||
	echo "  warning: sentinel now names $now_master as primary (started with 127.0.0.1:$S_PPORT): a failover happened during the run"
echo "finished: $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for cfg in memory redis redis+stepup sentinel cluster mix; do
	x=$(median "$W/rounds.tsv" 14 2 "$cfg")
	printf 'ratio %-13s x%.2f (target >= 0.90)%s\n' "$cfg:" "$x" "$(awk -v x="$x" 'BEGIN { if (x < 0.90) print "  BELOW" }')"
done
if [[ " ${CONFIGS[*]} " == *" bare-control "* ]]; then
	printf 'noise: bare-control x%.2f (rounds %s)\n' "$(median "$W/rounds.tsv" 14 2 bare-control)" "$(spread bare-control)"
fi
printf 'guard/bare ratio (scale-out): %.2f (sentinel), %.2f (cluster), %.2f (mix)\n' "$(median "$W/rounds.tsv" 14 2 sentinel)" \
	"$(median "$W/rounds.tsv" 14 2 cluster)" "$(median "$W/rounds.tsv" 14 2 mix)"
printf 'guard/bare ratio: %.2f (redis), %.2f (memory)\n' "$(median "$W/rounds.tsv" 14 2 redis)" "$(median "$W/rounds.tsv" 14 2 memory)"
