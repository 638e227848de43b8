--! requires: base
-- Change one schedule (ScheduleArgs): its hash K.schedule(name) and its place
-- in K.schedules, the set every worker's ticker reads (score: the next tick,
-- +inf while paused), always together. Times come from the caller (A.at),
-- whose clock is Redis's, or a test's. `advance` is how a ticker records a
-- handled tick: it moves the schedule on only if nobody moved it since the
-- ticker read it (A.expected), so exactly one ticker's view wins; the run a
-- tick started is noted either way. Replies ok | exists | missing | unchanged | stale.
local key = K.schedule(A.name)
if A.op == 'add' then
  if redis.call('EXISTS', key) == 1 then return 'exists' end
  redis.call('HSET', key, CF.spec, A.spec, CF.next, A.at, CF.skipped, 0)
  redis.call('ZADD', K.schedules, A.at, A.name)
  return 'ok'
end
if redis.call('EXISTS', key) == 0 then return 'missing' end
local paused = redis.call('HGET', key, CF.paused) == '1'
if A.op == 'remove' then
  redis.call('DEL', key)
  redis.call('ZREM', K.schedules, A.name)
elseif A.op == 'pause' then
  if paused then return 'unchanged' end
  redis.call('HSET', key, CF.paused, '1', CF.paused_at, A.at)
  redis.call('ZADD', K.schedules, '+inf', A.name)
elseif A.op == 'resume' then
  if not paused then return 'unchanged' end
  redis.call('HSET', key, CF.paused, '', CF.resumed_at, A.at)
  redis.call('ZADD', K.schedules, redis.call('HGET', key, CF.next), A.name)
elseif A.op == 'advance' then
  if A.run ~= '' and tonumber(A.tick) > tonumber(redis.call('HGET', key, CF.last_tick) or '0') then
    redis.call('HSET', key, CF.last_tick, A.tick, CF.last_run, A.run)
  end
  if redis.call('HGET', key, CF.next) ~= A.expected then return 'stale' end
  redis.call('HSET', key, CF.next, A.at, CF.held, A.held, CF.error, A.error)
  redis.call('HINCRBY', key, CF.skipped, tonumber(A.skipped))
  if not paused then redis.call('ZADD', K.schedules, A.at, A.name) end
end
return 'ok'
