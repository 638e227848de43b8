-- Move retries whose backoff has elapsed from the delayed set back onto their
-- Celery queue. Safe to run from every worker at once: each member is taken
-- by exactly one call. ARGV[1] key prefix, ARGV[2] batch size.
local P, batch = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local NOW = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', NOW, 'LIMIT', 0, batch)
local moved = 0
for _, member in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', member)
  local d = cjson.decode(member)
  local rk = P .. 'run:' .. d.r
  local rs = redis.call('HGET', rk, 'state')
  local field = d.s .. '.state'
  local st = redis.call('HGET', rk, field)
  if d.c and (rs == 'COMPENSATING' or rs == 'CANCELLING') and st == 'COMPENSATING' then
    -- A compensation waiting for its retry.
    redis.call('LPUSH', d.q, d.m)
    moved = moved + 1
  elseif rs == 'RUNNING' and d.w and (st == 'QUEUED' or (d.i ~= '' and st == 'RUNNING')) then
    -- A step that waited for a rate token or a concurrency slot: still queued.
    redis.call('LPUSH', d.q, d.m)
    moved = moved + 1
  elseif rs == 'RUNNING' and d.i == '' and st == 'RETRYING' and T.step[st].QUEUED then
    redis.call('HSET', rk, field, 'QUEUED', d.s .. '.q', string.format('%.6f', NOW))
    redis.call('RPUSH', rk .. ':events',
      cjson.encode({t = NOW, step = d.s, from = st, to = 'QUEUED'}))
    redis.call('LPUSH', d.q, d.m)
    moved = moved + 1
  elseif rs == 'RUNNING' and d.i ~= '' and st == 'RUNNING' then
    redis.call('LPUSH', d.q, d.m)
    moved = moved + 1
  end
end
return moved
