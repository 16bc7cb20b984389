-- Sliding-window log rate limiter; runs atomically inside Redis.
--
-- KEYS[1]  sorted set: one member per admitted request, score = admission
--          time in microseconds (Redis server clock)
-- ARGV[1]  limit (>= 1)
-- ARGV[2]  window in microseconds (>= 1000)
-- ARGV[3]  member unique to this request
--
-- Returns {allowed (0|1), remaining, reset_us, now_us}; reset_us is when
-- `remaining` next increases (see the Rust module docs).

local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])

-- Server time, so every app instance judges against the same clock.
-- Microseconds since the epoch are ~1.7e15 < 2^53: exact in Lua's doubles.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- A request admitted at s occupies [s, s + window): drop every s <= now - window.
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)

local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
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

-- Every entry is gone one window after the newest, so the key can be too:
-- abandoned keys never outlive their last request by more than a window.
redis.call('PEXPIRE', key, math.ceil(window / 1000))

local remaining = limit - count
if remaining < 0 then remaining = 0 end
return {allowed, remaining, reset, now}
