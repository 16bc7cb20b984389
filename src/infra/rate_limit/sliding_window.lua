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
-- batch see each other, exactly as if they had come one after another.

-- Server time, so every app instance judges against the same clock.
-- Microseconds since the epoch are ~1.7e15 < 2^53: exact in Lua's doubles.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local reply = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i - 2])
  local window = tonumber(ARGV[3 * i - 1])

  -- A request admitted at s occupies [s, s + window): drop every s <= now - window.
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)

  local count = redis.call('ZCARD', key)
  local allowed = 0
  if count < limit then
    redis.call('ZADD', key, now, ARGV[3 * i])
    -- Every entry is gone one window after the newest, so the key can be
    -- too: abandoned keys never outlive their last admission by more than a
    -- window. A rejection adds nothing, so the expiry set here still holds.
    redis.call('PEXPIRE', key, math.ceil(window / 1000))
    count = count + 1
    allowed = 1
  end

  -- `remaining` grows once the entry at rank (count - limit) has left the
  -- window: the oldest one unless the limit was lowered below the log size.
  local rank = count - limit
  if rank < 0 then rank = 0 end
  local reset = now + window
  local entry = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  if entry[2] then reset = tonumber(entry[2]) + window end

  local remaining = limit - count
  if remaining < 0 then remaining = 0 end
  reply[#reply + 1] = allowed
  reply[#reply + 1] = remaining
  reply[#reply + 1] = reset
end
reply[#reply + 1] = now
return reply
