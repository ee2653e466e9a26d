-- The "mix" row of bench/load/run.sh: realistic traffic over many live
-- sessions.
--
--   wrk ... -s mix.lua URL -- HOT_FILE FRESH_FILE THREADS FRESH_PCT ZIPF_S SEED
--
-- HOT_FILE holds one ACCESS token a line, one per live session; line k is
-- the session of rank k, and each request draws a rank from a Zipf
-- distribution with exponent ZIPF_S (P(k) ~ k^-s, from a precomputed CDF,
-- by binary search). FRESH_PCT percent of the requests instead carry the
-- next unused token of FRESH_FILE: a "fresh login", the first request of a
-- session that no gateway has read before. Each fresh token is sent once;
-- with several wrk threads, thread t takes lines t, t+THREADS, ... so no
-- two threads share one. When a thread runs out of fresh tokens it sends a
-- Zipf token instead and counts a shortfall, which done() reports.
--
-- The draws come from math.random seeded with SEED and the thread number,
-- so the bare run and the guarded run of one round send the same token
-- stream (up to the number of requests each completes).
--
-- done() prints "RESULT requests duration_us p50_us p99_us non2xx sockerr"
-- (as report.lua does) and "MIX sent fresh_sent fresh_short distinct_hot".

local threads = {}
local nthreads = 0

-- setup runs in the main Lua state, once per thread, before that thread's
-- init.
function setup(thread)
	thread:set("tid", nthreads)
	nthreads = nthreads + 1
	threads[#threads + 1] = thread
end

local hot, cdf, fresh, seen = {}, {}, {}, {}
local nhot, nfresh, nextfresh = 0, 0, 1
local fresh_p = 0.01

-- Read back by done() through thread:get, so global.
sent, fresh_sent, fresh_short, distinct = 0, 0, 0, 0

function init(args)
	local me = tid or 0
	local nth = tonumber(args[3]) or 1
	fresh_p = (tonumber(args[4]) or 1) / 100
	local s = tonumber(args[5]) or 1.1
	math.randomseed((tonumber(args[6]) or 1) * 1000 + me)
	for line in io.lines(args[1]) do
		nhot = nhot + 1
		hot[nhot] = "Bearer " .. line
	end
	assert(nhot > 0, "mix.lua: no tokens in " .. args[1])
	local sum = 0
	for k = 1, nhot do
		sum = sum + k ^ -s
		cdf[k] = sum
	end
	for k = 1, nhot do
		cdf[k] = cdf[k] / sum
	end
	cdf[nhot] = 1
	local i = 0
	for line in io.lines(args[2]) do
		if i % nth == me then
			nfresh = nfresh + 1
			fresh[nfresh] = "Bearer " .. line
		end
		i = i + 1
	end
end

-- zipf returns a rank in 1..nhot: the first k with cdf[k] >= u.
local function zipf()
	local u = math.random()
	local lo, hi = 1, nhot
	while lo < hi do
		local mid = math.floor((lo + hi) / 2)
		if cdf[mid] >= u then
			hi = mid
		else
			lo = mid + 1
		end
	end
	if not seen[lo] then
		seen[lo] = true
		distinct = distinct + 1
	end
	return lo
end

function request()
	sent = sent + 1
	local tok
	if math.random() < fresh_p then
		if nextfresh <= nfresh then
			tok = fresh[nextfresh]
			fresh[nextfresh] = nil
			nextfresh = nextfresh + 1
			fresh_sent = fresh_sent + 1
		else
			fresh_short = fresh_short + 1
			tok = hot[zipf()]
		end
	else
		tok = hot[zipf()]
	end
	wrk.headers["Authorization"] = tok
	return wrk.format()
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
	local a, b, c, d = 0, 0, 0, 0
	for _, t in ipairs(threads) do
		a = a + (t:get("sent") or 0)
		b = b + (t:get("fresh_sent") or 0)
		c = c + (t:get("fresh_short") or 0)
		d = d + (t:get("distinct") or 0)
	end
	io.write(string.format("MIX %d %d %d %d\n", a, b, c, d))
end
