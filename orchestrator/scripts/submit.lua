-- Create a run and queue its root steps, atomically.
-- ARGV[4] workflow ref, ARGV[5] input JSON, ARGV[6] idempotency key name or ''.
local ref, input, key = ARGV[4], ARGV[5], ARGV[6]
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
hset('left', #META.order)
move_run('RUNNING')
for _, r in ipairs(META.roots) do dispatch(r) end
if key ~= '' then redis.call('SET', key, RUN) end
redis.call('ZADD', P .. 'runs', NOW, RUN)
flush()
return {'created', RUN}
