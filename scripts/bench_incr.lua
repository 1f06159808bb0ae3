-- wrk script for scripts/bench.sh: every request is POST /counter/c<N> with
-- body "1", N uniformly random in 1..COUNTERS (default 300). wrk keeps the
-- connections alive (HTTP/1.1, no Connection header, as curl sends).
--
--   wrk -t2 -c50 -d10s -s scripts/bench_incr.lua http://127.0.0.1:7777 -- 300
--
-- At the end it prints one line that bench.sh parses:
--   bench: requests=<completed> non2xx=<n> socket_errors=<n> duration_us=<n>

local counters = 300
local requests = {}
local threads = {}

-- Runs once per thread in the main interpreter: give each thread its own id
-- so the threads do not share a random sequence.
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Runs in each thread: builds every request once, so the Lua cost per request
-- is a table lookup and the comparison with nginx measures the servers.
function init(args)
  if args[1] ~= nil then
    counters = tonumber(args[1]) or counters
  end
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  for i = 1, counters do
    local headers = { ["Content-Type"] = "text/plain" }
    requests[i] = wrk.format("POST", "/counter/c" .. i, headers, "1")
  end
end

function request()
  return requests[math.random(counters)]
end

function done(summary, latency, reqs)
  local e = summary.errors
  io.write(string.format(
    "bench: requests=%d non2xx=%d socket_errors=%d duration_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration))
end
