-- wrk script for scripts/bench/rate-limit.sh: GET /api/products/{id}, each request as the
-- seller that owns the product, cycling through a list of (seller, product) pairs.
--
--   wrk -t2 -c64 -d15s --latency -s scripts/bench/rate-limit.lua http://127.0.0.1:3901 -- PAIRS
--
-- PAIRS: a file with one "seller-id product-id" per line (one line = the one-seller case).
-- Requests are pre-formatted at init so the client does the same work in every case.
-- done() prints one machine-readable "BENCH ..." line that the shell script parses.

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local requests, n, i = {}, 0, 0

function init(args)
  local path = args[1] or error("usage: wrk ... -s rate-limit.lua URL -- PAIRS_FILE")
  for line in io.lines(path) do
    local seller, id = line:match("^(seller%-%w+)%s+(%d+)%s*$")
    if seller then
      n = n + 1
      requests[n] = wrk.format("GET", "/api/products/" .. id, { ["X-Seller-Id"] = seller })
    end
  end
  if n == 0 then error("no 'seller-id product-id' lines in " .. path) end
  -- Threads start at different points of the list (round-robin from there).
  i = ((tid or 0) * 499) % n
end

function request()
  i = i % n + 1
  return requests[i]
end

function done(summary, latency, _)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
