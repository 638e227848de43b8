--! requires: base
-- A live worker says, for 10 s, that it lives (K.worker: A.presence, a JSON
-- object with its queues and instance) and with how many processes it
-- consumes each queue (K.capacity, which claiming.lua's spare_width reads)
-- (BeatArgs). Scored with Redis time, so a worker whose clock is off is
-- neither seen too long nor missed. Replies what K.worker held before, so a
-- worker notices another one beating under its name (workers/names.py).
local previous = redis.call('GET', K.worker(A.hostname))
redis.call('SET', K.worker(A.hostname), A.presence, 'EX', 10)
for _, q in ipairs(A.queues) do
  local k = K.capacity(q)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
  redis.call('ZADD', k, NOW + 10, A.hostname .. '|' .. A.concurrency)
  redis.call('EXPIRE', k, 60)
end
return previous
