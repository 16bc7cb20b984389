-- Sliding-window log rate limiter; runs atomically inside Redis, deciding a
-- batch of requests (one or more) in order.
--
-- KEYS[i]     sorted set of request i's key and policy: one member per
--             admitted request, score = admission time in microseconds
--             (Redis server clock)
-- ARGV[3i-2]  request i's limit (>= 1)
-- ARGV[3i-1]  request i's window in microseconds (>= 1000)
-- ARGV[3i]    a member unique to request i
--
-- Returns {allowed_1 (0|1), remaining_1, reset_us_1, ..., allowed_n,
-- remaining_n, reset_us_n, now_us}; reset_us is when `remaining` next
-- increases (see the Rust module docs). Requests for the same key in one
-- batch are decided one after another, exactly as if they had come apart,
-- but the key is read and written once: a seller's burst costs Redis a few
-- commands per batch, not per request.

-- Server time, so every app instance judges against the same clock.
-- Microseconds since the epoch are ~1.7e15 < 2^53: exact in Lua's doubles.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- The log of one key as this batch sees it: read on first use.
local logs = {}
local order = {}
local function log_of(key, window)
  local log = logs[key]
  if log then return log end
  -- A request admitted at s occupies [s, s + window): drop every s <= now - window.
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local stored = redis.call('ZCARD', key)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  log = {
    stored = stored,
    count = stored,
    oldest = tonumber(oldest[2]),
    window = window,
    added = {},
  }
  logs[key] = log
  order[#order + 1] = key
  return log
end

local reply = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])
  local log = log_of(key, window)

  local allowed = 0
  if log.count < limit then
    local added = log.added
    added[#added + 1] = now
    added[#added + 1] = ARGV[3 * i]
    log.count = log.count + 1
    log.oldest = log.oldest or now
    allowed = 1
  end

  -- `remaining` grows once the entry at rank (count - limit) has left the
  -- window: the oldest one unless the limit was lowered below the log size.
  -- Entries added in this batch rank after the stored ones and leave last.
  local rank = log.count - limit
  local reset = now + window
  if rank <= 0 then
    reset = log.oldest + window
  elseif rank < log.stored then
    local entry = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
    reset = tonumber(entry[2]) + window
  end

  local remaining = limit - log.count
  if remaining < 0 then remaining = 0 end
  reply[#reply + 1] = allowed
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset
end

for _, key in ipairs(order) do
  local log = logs[key]
  if #log.added > 0 then
    redis.call('ZADD', key, unpack(log.added))
    -- Every entry is gone one window after the newest, so the key can be
    -- too: abandoned keys never outlive their last admission by more than a
    -- window. A rejection adds nothing, so an earlier expiry still holds.
    redis.call('PEXPIRE', key, math.ceil(log.window / 1000))
  end
end

reply[#reply + 1] = now
return reply
