-- Dependencies: limits shared by every worker, declared per named dependency
-- (see keys.py for the keys). A step's plan record carries its dependency as
-- `dep = {n = name, rate, burst, conc, ratio, minps, fr, mc, of}`; absent
-- fields mean "no such limit". Windows for the retry budget and the breaker
-- are WINDOW seconds long.
local WINDOW = 10

local function dkey(d, part) return P .. 'dep:' .. d.n .. ':' .. part end

local function count(d, kind)
  local k = dkey(d, kind)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW - WINDOW)
  return redis.call('ZCARD', k)
end
local function note(d, kind, member)
  redis.call('ZADD', dkey(d, kind), NOW, member)
  redis.call('EXPIRE', dkey(d, kind), WINDOW * 2)
end

-- Breaker: 'closed' | 'open' (until) | 'half_open' (one probe in flight).
-- Returns true when a call may go ahead; a half-open breaker lets one through.
local function breaker_admits(d, s, token)
  if not d.fr then return true end
  local b = redis.call('HMGET', dkey(d, 'breaker'), 'state', 'until', 'probe')
  local state = b[1] or 'closed'
  if state == 'closed' then return true end
  if state == 'open' and NOW < tonumber(b[2]) then return false end
  if state == 'half_open' then return false end
  redis.call('HSET', dkey(d, 'breaker'), 'state', 'half_open', 'probe', token)
  event({step = s, dependency = d.n, breaker = 'half_open'})
  return true
end

-- A probe that could not start (no slot, no token) gives the breaker back, so
-- the next caller can probe instead of the breaker staying half-open forever.
local function breaker_return_probe(d, token)
  if not d.fr then return end
  local bk = dkey(d, 'breaker')
  local b = redis.call('HMGET', bk, 'state', 'probe')
  if b[1] == 'half_open' and b[2] == token then
    redis.call('HSET', bk, 'state', 'open', 'until', NOW, 'probe', '')
  end
end

local function breaker_after(d, s, token, ok)
  if not d.fr then return end
  local bk = dkey(d, 'breaker')
  local b = redis.call('HMGET', bk, 'state', 'probe')
  if b[1] == 'half_open' and b[2] == token then
    if ok then
      redis.call('DEL', bk, dkey(d, 'ok'), dkey(d, 'fail'))
      event({step = s, dependency = d.n, breaker = 'closed'})
    else
      redis.call('HSET', bk, 'state', 'open', 'until', NOW + d.of)
      event({step = s, dependency = d.n, breaker = 'open', reason = 'probe failed'})
    end
    return
  end
  if ok or (b[1] or 'closed') ~= 'closed' then return end
  local fails = count(d, 'fail')
  local calls = fails + count(d, 'ok')
  if calls >= d.mc and fails / calls >= d.fr then
    redis.call('HSET', bk, 'state', 'open', 'until', NOW + d.of, 'probe', '')
    event({step = s, dependency = d.n, breaker = 'open', failures = fails, calls = calls})
  end
end

-- Concurrency: a slot is a lease (token -> expiry) renewed with the attempt's.
local function take_slot(d, token, lease)
  if not d.conc then return true end
  local k = dkey(d, 'slots')
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
  if redis.call('ZCARD', k) >= d.conc then return false end
  redis.call('ZADD', k, NOW + lease, token)
  return true
end
local function free_slot(d, token)
  if d.conc then redis.call('ZREM', dkey(d, 'slots'), token) end
end

-- Rate: a token bucket of `burst` tokens refilled at `rate` per second.
-- Returns 0 when a token was taken, else the seconds until the caller's token
-- will be there. A caller that must wait reserves its token now (the bucket
-- goes into debt), so waiters come back one per token, in order, instead of
-- all at once to fight over the next one.
local function take_token(d)
  if not d.rate then return 0 end
  local k = dkey(d, 'bucket')
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
  if not d.ratio then return true end
  local allowed = d.ratio * count(d, 'first') + d.minps * WINDOW
  if count(d, 'retry') + 1 > allowed then return false end
  note(d, 'retry', token)
  return true
end
