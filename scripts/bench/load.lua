-- wrk script for scripts/bench/load.sh and rate-limit.sh: one request kind per run, each
-- request as the seller that owns the product, cycling through "seller-id product-id" pairs.
--
--   wrk -t2 -c64 -d15s --latency -s load.lua URL -- MODE PAIRS
--
-- MODE: get (GET /api/products/{id}), list (GET /api/products?limit=20), create
-- (POST /api/products), mix (70% get, 20% create, 10% quantity adjustment of +1).
-- PAIRS: a file with one "seller-id product-id [token]" per line (one line = the one-seller
-- case); with a token the request carries it as a bearer token instead of X-Seller-Id.
-- GETs are formatted once at init, so the client's work per GET is the same in every run.
-- done() prints one "BENCH ..." line that the shell scripts parse.

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local pairs_, gets, n, i, k, mode = {}, {}, 0, 0, 0, "get"
local body = '{"name":"Load","price":9.99,"quantity":50,"category":"Bench"}'
local adjust = '{"delta":1,"reason":"load"}'
local json = { ["Content-Type"] = "application/json" }

-- The seller's credentials: its bearer token when the pairs file gives one, else X-Seller-Id.
local function with_seller(headers, seller, token)
  local h = token and { ["Authorization"] = "Bearer " .. token } or { ["X-Seller-Id"] = seller }
  for key, v in pairs(headers or {}) do h[key] = v end
  return h
end

function init(args)
  mode = args[1] or error("usage: ... -- MODE PAIRS")
  local path = args[2] or error("usage: ... -- MODE PAIRS")
  for line in io.lines(path) do
    local seller, id, token = line:match("^(seller%-%w+)%s+(%d+)%s*(%S*)%s*$")
    if seller then
      n = n + 1
      if token == "" then token = nil end
      pairs_[n] = { seller = seller, id = id, token = token }
      gets[n] = wrk.format("GET", "/api/products/" .. id, with_seller(nil, seller, token))
    end
  end
  if n == 0 then error("no pairs in " .. path) end
  i = ((tid or 0) * 499) % n
end

function request()
  i = i % n + 1
  k = k + 1
  local p = pairs_[i]
  local kind = mode
  if mode == "mix" then
    local r = k % 10
    if r < 7 then kind = "get" elseif r < 9 then kind = "create" else kind = "adjust" end
  end
  if kind == "get" then
    return gets[i]
  elseif kind == "list" then
    return wrk.format("GET", "/api/products?limit=20", with_seller(nil, p.seller, p.token))
  elseif kind == "create" then
    return wrk.format("POST", "/api/products", with_seller(json, p.seller, p.token), body)
  else
    return wrk.format("POST", "/api/products/" .. p.id .. "/quantity-adjustments",
      with_seller(json, p.seller, p.token), adjust)
  end
end

function done(summary, latency, _)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
