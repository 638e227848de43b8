--! requires: base
-- A live worker says, for 10 s, which queues it consumes (K.worker) and with
-- how many processes (K.capacity, which claiming.lua's spare_width reads)
-- (BeatArgs). Scored with Redis time, so a worker whose clock is off is
-- neither seen too long nor missed.
redis.call('SET', K.worker(A.hostname), table.concat(A.queues, ','), 'EX', 10)
for _, q in ipairs(A.queues) do
  local k = K.capacity(q)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
  redis.call('ZADD', k, NOW + 10, A.hostname .. '|' .. A.concurrency)
  redis.call('EXPIRE', k, 60)
end
return #A.queues
