--! requires: run, dispatch, finish, replies
--! hot: meta, move_run, terminal
-- Create a run and dispatch its root steps, atomically (SubmitArgs).
-- Replies 'created' {run id, run to cancel or ''} | 'existing' {run id},
-- 'noplan' {ref}, 'refused' {scope,
-- limit, queued}: admission control, when the workflow's backlog (scope
-- 'workflow') or its fairness key's (scope 'key') holds max_queued runs that
-- have not started. An idempotent resubmit is answered before the limits.
if A.key ~= '' then
  local existing = redis.call('GET', A.key)
  if existing then return reply('existing', {existing}) end
end
if redis.call('EXISTS', RK) == 1 then return reply('existing', {RUN}) end
fresh_run()
if not read_plan(A.ref) then return reply('noplan', {A.ref}) end
local wf, fk = string.match(A.ref, '^(.*):%d+$'), A.fairness_key
local function over(scope, limit, backlog, field)
  if not limit then return nil end
  local queued = redis.call('ZCARD', backlog)
  if queued < limit then return nil end
  redis.call('HINCRBY', K.refused, field, 1)
  return reply('refused', {scope, tostring(limit), tostring(queued)})
end
local refused = over('workflow', meta().max_queued, K.backlog(wf), wf)
if not refused and fk ~= '' then
  refused = over('key', meta().key_max_queued, K.key_backlog(wf, fk), wf .. ':' .. fk)
end
if refused then return refused end
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
if A.priority ~= '' and A.priority ~= '0' then hset(RF.priority, A.priority) end
-- Per-key concurrency (dispatch.lua leave_slot): take a slot, or wait, or
-- cancel the newest (this run) or the oldest (the caller cancels it: evicted).
local limit, ck, waits, evicted = meta().concurrency, A.concurrency_key, false, ''
if limit and ck ~= '' then
  hset(RF.concurrency_key, ck)
  redis.call('SADD', K.concurrency_keys, A.ref .. '|' .. ck)  -- for orch queues, not a scan
  local slots = K.run_slots(A.ref, ck)
  if redis.call('ZCARD', slots) < limit.max_runs then
    redis.call('ZADD', slots, NOW, RUN)
  elseif limit.strategy == 'cancel_oldest' then
    evicted = redis.call('ZRANGE', slots, 0, 0)[1]
    redis.call('ZREM', slots, evicted)
    redis.call('ZADD', slots, NOW, RUN)
  elseif limit.strategy == 'cancel_newest' then
    waits = 'cancel'
  else
    redis.call('RPUSH', K.run_waiting(A.ref, ck), RUN)
    waits = true
  end
end
if fk ~= '' then
  hset(RF.fairness_key, fk)
  if A.fairness_weight ~= '' and tonumber(A.fairness_weight) ~= 1 then
    hset(RF.fairness_weight, A.fairness_weight)
  end
  redis.call('ZADD', K.key_backlog(wf, fk), NOW, RUN)
  redis.call('SADD', K.backlog_keys(wf), fk)  -- for orch queues, not a scan
end
hset(RF.queued, '1')
redis.call('ZADD', K.backlog(wf), NOW, RUN)
if waits == 'cancel' then
  hset(RF.concurrency_key, '')
  move_run('CANCELLING', {reason = 'concurrency'})
  finish_run('CANCELLED', 'concurrency limit: ' .. limit.max_runs .. ' runs of key ' .. ck ..
    ' are running (strategy cancel_newest)')
elseif not waits then
  move_run('RUNNING')
  preload(meta().roots, LF.message)
  for _, r in ipairs(meta().roots) do dispatch(r) end
end
if A.key ~= '' then redis.call('SET', A.key, RUN) end
redis.call('ZADD', K.runs, NOW, RUN)
redis.call('ZADD', K.score_active, NOW, A.ref)
commit()
return reply('created', {RUN, evicted})
