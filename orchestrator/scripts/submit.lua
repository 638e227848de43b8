--! requires: run, dispatch, finish, replies
-- Create a run and dispatch its root steps, atomically (SubmitArgs).
-- Replies 'created' | 'existing' {run id}, 'noplan' {ref}.
if A.key ~= '' then
  local existing = redis.call('GET', A.key)
  if existing then return reply('existing', {existing}) end
end
if redis.call('EXISTS', RK) == 1 then return reply('existing', {RUN}) end
if redis.call('HEXISTS', K.plan(A.ref), LF.meta) == 0 then return reply('noplan', {A.ref}) end
use_plan(A.ref)
move_run('PENDING')
hset(RF.workflow, A.ref)
hset(RF.input, A.input)
hset(RF.created_at, NOWS)
hset(RF.key, A.key)
if A.context ~= '' then hset(RF.context, A.context) end
if A.deadline ~= '' then
  local at = NOW + tonumber(A.deadline)
  hset(RF.deadline, A.deadline)
  hset(RF.deadline_at, string.format('%.6f', at))
  redis.call('ZADD', K.deadlines, at, RUN)
end
hset(RF.left, #meta().order)
move_run('RUNNING')
for _, r in ipairs(meta().roots) do dispatch(r) end
if A.key ~= '' then redis.call('SET', A.key, RUN) end
redis.call('ZADD', K.runs, NOW, RUN)
redis.call('ZADD', K.score_active, NOW, A.ref)
commit()
return reply('created', {RUN})
