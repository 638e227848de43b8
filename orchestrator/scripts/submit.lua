-- Create a run and queue its root steps, atomically.
-- ARGV[5] workflow ref, ARGV[6] input JSON, ARGV[7] idempotency key name or ''.
local ref, input, key = ARGV[5], ARGV[6], ARGV[7]
if key ~= '' then
  local existing = redis.call('GET', key)
  if existing then return {'existing', existing} end
end
if redis.call('EXISTS', RK) == 1 then return {'existing', RUN} end
if redis.call('HEXISTS', P .. 'plan:' .. ref, '__meta__') == 0 then return {'noplan', ref} end
use_plan(ref)
move_run('PENDING')
hset('wf', ref)
hset('input', input)
hset('created_at', NOWS)
hset('key', key)
hset('left', #meta().order)
move_run('RUNNING')
for _, r in ipairs(meta().roots) do dispatch(r) end
if key ~= '' then redis.call('SET', key, RUN) end
redis.call('ZADD', P .. 'runs', NOW, RUN)
flush()
return {'created', RUN}
