--! requires: run
--! cold: count, note, breaker_admits, breaker_return_probe, breaker_after, take_slot, free_slot, take_token, budget_allows
-- Dependencies: limits shared by every worker, declared per named dependency
-- (keys dep_* in keys.py). A step's plan record carries its dependency as
-- fields.py DEPENDENCY_RECORD; an absent field means "no such limit". Windows
-- of the retry budget and the breaker are WINDOW seconds long.
local WINDOW = 10

local function count(d, kind)
  local k = K.dep_calls(d.name, kind)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW - WINDOW)
  return redis.call('ZCARD', k)
end
local function note(d, kind, member)
  redis.call('ZADD', K.dep_calls(d.name, kind), NOW, member)
  redis.call('EXPIRE', K.dep_calls(d.name, kind), WINDOW * 2)
end

-- Breaker: 'closed' | 'open' (until) | 'half_open' (one probe in flight).
-- Returns true when a call may go ahead; a half-open breaker lets one through.
local function breaker_admits(d, s, token)
  if not d.failure_rate then return true end
  local b = redis.call('HMGET', K.dep_breaker(d.name), 'state', 'until', 'probe')
  local state = b[1] or 'closed'
  if state == 'closed' then return true end
  if state == 'open' and NOW < tonumber(b[2]) then return false end
  if state == 'half_open' then return false end
  redis.call('HSET', K.dep_breaker(d.name), 'state', 'half_open', 'probe', token)
  event({step = s, dependency = d.name, breaker = 'half_open'})
  return true
end

-- A probe that could not start (no slot, no token) gives the breaker back, so
-- the next caller can probe instead of the breaker staying half-open forever.
local function breaker_return_probe(d, token)
  if not d.failure_rate then return end
  local bk = K.dep_breaker(d.name)
  local b = redis.call('HMGET', bk, 'state', 'probe')
  if b[1] == 'half_open' and b[2] == token then
    redis.call('HSET', bk, 'state', 'open', 'until', NOW, 'probe', '')
  end
end

local function breaker_after(d, s, token, ok)
  if not d.failure_rate then return end
  local bk = K.dep_breaker(d.name)
  local b = redis.call('HMGET', bk, 'state', 'probe')
  if b[1] == 'half_open' and b[2] == token then
    if ok then
      redis.call('DEL', bk, K.dep_calls(d.name, 'ok'), K.dep_calls(d.name, 'fail'))
      event({step = s, dependency = d.name, breaker = 'closed'})
    else
      redis.call('HSET', bk, 'state', 'open', 'until', NOW + d.open_for)
      event({step = s, dependency = d.name, breaker = 'open', reason = 'probe failed'})
    end
    return
  end
  if ok or (b[1] or 'closed') ~= 'closed' then return end
  local fails = count(d, 'fail')
  local calls = fails + count(d, 'ok')
  if calls >= d.min_calls and fails / calls >= d.failure_rate then
    redis.call('HSET', bk, 'state', 'open', 'until', NOW + d.open_for, 'probe', '')
    event({step = s, dependency = d.name, breaker = 'open', failures = fails, calls = calls})
  end
end

-- Concurrency: a slot is a lease (token -> expiry) renewed with the attempt's.
local function take_slot(d, token, lease)
  if not d.concurrency then return true end
  local k = K.dep_slots(d.name)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
  if redis.call('ZCARD', k) >= d.concurrency then return false end
  redis.call('ZADD', k, NOW + lease, token)
  return true
end
local function free_slot(d, token)
  if d.concurrency then redis.call('ZREM', K.dep_slots(d.name), token) end
end

-- Rate: a token bucket of `burst` tokens refilled at `rate` per second.
-- Returns 0 when a token was taken, else the seconds until the caller's token
-- will be there. A caller that must wait reserves its token now (the bucket
-- goes into debt), so waiters come back one per token, in order, instead of
-- all at once to fight over the next one.
local function take_token(d)
  if not d.rate then return 0 end
  local k = K.dep_bucket(d.name)
  local b = redis.call('HMGET', k, 'tokens', 'ts')
  local tokens = tonumber(b[1] or d.burst)
  local ts = tonumber(b[2] or NOW)
  tokens = math.min(d.burst, tokens + (NOW - ts) * d.rate) - 1
  local wait = 0
  if tokens < 0 then wait = -tokens / d.rate end
  redis.call('HSET', k, 'tokens', tostring(tokens), 'ts', tostring(NOW))
  redis.call('EXPIRE', k, 3600)
  return wait
end

-- Retry budget: retries in the window may not exceed ratio * first attempts
-- plus min_per_s * WINDOW. Returns true (and counts the retry) when allowed.
local function budget_allows(d, token)
  if not d.budget_ratio then return true end
  local allowed = d.budget_ratio * count(d, 'first') + d.budget_min_per_s * WINDOW
  if count(d, 'retry') + 1 > allowed then return false end
  note(d, 'retry', token)
  return true
end
