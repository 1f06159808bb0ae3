-- wrk script for scripts/bench.sh. Arguments after "--":
--   <counters>  requests name c1..c<counters>, uniformly at random (300)
--   <kind>      incr: POST /counter/c<N> with body "1" (the default)
--               value: GET /counter/c<N>/value
--   <depth>     requests pipelined per write on each connection (1: none)
--
--   wrk -t2 -c50 -d10s -s scripts/bench.lua http://127.0.0.1:7777 -- 300 incr 16
--
-- wrk keeps the connections alive (HTTP/1.1, no Connection header, as curl
-- sends). With depth > 1 it writes <depth> requests at once and sends the
-- next group once every reply of the last one arrived. At the end it prints
-- one line that bench.sh parses:
--   bench: requests=<completed> non2xx=<n> socket_errors=<n> duration_us=<n>

local counters = 300
local kind = "incr"
local depth = 1
local requests = {}
local prebuilt_max = 100000
local threads = {}

-- Runs once per thread in the main interpreter: give each thread its own id
-- so the threads do not share a random sequence.
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Runs in each thread: builds every request once, so the Lua cost per
-- request is a table lookup and the comparison with nginx measures the
-- servers.
function init(args)
  counters = tonumber(args[1] or "") or counters
  kind = args[2] or kind
  depth = tonumber(args[3] or "") or depth
  if kind ~= "incr" and kind ~= "value" then
    error("bench.lua: kind must be incr or value, not " .. kind)
  end
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  if counters <= prebuilt_max then
    for i = 1, counters do
      requests[i] = format(i)
    end
  end
end

-- The request for counter c<i>.
function format(i)
  if kind == "incr" then
    local headers = { ["Content-Type"] = "text/plain" }
    return wrk.format("POST", "/counter/c" .. i, headers, "1")
  end
  return wrk.format("GET", "/counter/c" .. i .. "/value")
end

-- A request for a counter picked at random: prebuilt up to prebuilt_max
-- counters, formatted on the spot beyond (scripts/bench_scale.sh picks
-- among millions).
function pick()
  local i = math.random(counters)
  return requests[i] or format(i)
end

function request()
  if depth == 1 then
    return pick()
  end
  local group = {}
  for i = 1, depth do
    group[i] = pick()
  end
  return table.concat(group)
end

function done(summary, latency, reqs)
  local e = summary.errors
  io.write(string.format(
    "bench: requests=%d non2xx=%d socket_errors=%d duration_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration))
end
