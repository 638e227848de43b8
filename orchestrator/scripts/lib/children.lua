--! requires: run, dispatch, saga, finish, replies
--! cold: child_id, inherited, start_child, waiting_child, collect_child, running_children, cancel_children, children_of, reopen_child
-- Child workflows: a `workflow: NAME[:VERSION]` step runs as a run of its own.
--
-- A worker claims the step like a task; instead of user code it calls
-- spawn.lua, which starts the child run (id derived from parent run, step,
-- element and attempt, so one attempt never starts two) and moves the step
-- to WAITING (a map element keeps its child in the parts hash). The parent
-- attempt stays in flight (RF.inflight) while its child runs, so a parent
-- that fails or is cancelled winds down only once its children have ended.
-- The child keeps, in RF.notify, the parent step's message: when the child
-- ends (finish.lua) the message is queued, a worker claims the step again
-- (collect_child: the attempt is taken back, mode 'child') and records the
-- child's outcome with complete.lua or fail.lua, retry policy and all.
--
-- These functions switch the script from one run to another (open_run):
-- callers write each run before they switch (write_run, or commit).

-- The id of the child that attempt `att` of step s (element idx) starts; the
-- same as orchestrator.children.child_run_id.
local function child_id(s, idx, att)
  return string.sub(redis.sha1hex(RUN .. '|' .. s .. '|' .. idx .. '|' .. att), 1, 16)
end

-- What a child run takes from its parent: the one place that copies parent
-- attributes. Called while the parent is open; a run attribute the queueing
-- of runs adds (a priority, a fairness key) is copied here.
local function inherited()
  local out = {[RF.depth] = tostring(num(RF.depth) + 1)}
  for _, f in ipairs({RF.priority, RF.fairness_key, RF.fairness_weight}) do
    local v = hget(f)
    if v and v ~= '' then out[f] = v end
  end
  return out
end

-- Create child run `kid` of workflow `ref` (the submit of a child). Returns
-- false when it exists already. The script is left on the child run.
local function start_child(kid, ref, input, context, link, attributes, notify, queue)
  open_run(kid)
  switch_plan(ref)
  if redis.call('EXISTS', RK) == 1 then return false end
  move_run('PENDING', {parent = link})
  hset(RF.workflow, ref)
  hset(RF.input, input)
  hset(RF.created_at, NOWS)
  hset(RF.key, '')
  if context ~= '' then hset(RF.context, context) end
  hset(RF.parent, link)
  hset(RF.notify, notify)
  hset(RF.notify_queue, queue)
  for f, v in pairs(attributes) do hset(f, v) end
  hset(RF.left, #meta().order)
  move_run('RUNNING')
  for _, r in ipairs(meta().roots) do dispatch(r) end
  redis.call('ZADD', K.runs, NOW, RUN)
  redis.call('ZADD', K.score_active, NOW, ref)
  write_run()
  return true
end

-- The child a claimed step (or element) waits for, or nil.
local function waiting_child(s, idx, st)
  if idx == '' then
    if st ~= 'WAITING' then return nil end
    return hget(s .. SF.child)
  end
  return redis.call('HGET', K.parts(RUN, s), PF.child .. idx)
end

-- Claim of a step waiting for child `kid`: 'waiting' while the child runs;
-- once it has ended, the step's attempt is taken back (same attempt number,
-- new token and lease, already in flight) in mode 'child', whose worker
-- records the child's outcome. A child that expired counts as failed.
local function collect_child(s, idx, kid, token, worker, lease)
  local ks = redis.call('HGET', K.run(kid), RF.state)
  if ks and not terminal(ks) then return 'waiting', {s} end
  local st = step_state(s)
  if idx ~= '' and st ~= 'RUNNING' then
    -- Another element failed the step for good: this outcome has nowhere to
    -- go, and its attempt is over.
    redis.call('HDEL', K.parts(RUN, s), PF.child .. idx)
    attempt_over()
    return 'skip', {st}
  end
  local att
  if idx == '' then
    att = num(s .. SF.attempts)
    move_step(s, 'RUNNING', {attempt = att, worker = worker, child = kid})
    hset(s .. SF.token, token)
  else
    local parts = K.parts(RUN, s)
    att = tonumber(redis.call('HGET', parts, PF.attempts .. idx) or '1')
    redis.call('HSET', parts, PF.token .. idx, token)
    redis.call('HDEL', parts, PF.child .. idx)
  end
  hset(s .. SF.worker, worker)
  redis.call('ZADD', K.leases, NOW + lease, lease_member(s, idx, token))
  return 'run', attempt_inputs(s, idx, att, 'child', SF.queued_at)
end

-- Every child run of this run that is still running (its step waits for it).
local function running_children()
  local kids = {}
  for _, s in ipairs(meta().children or {}) do
    local st = step_state(s)
    if st == 'WAITING' then
      kids[#kids + 1] = hget(s .. SF.child)
    elseif st == 'RUNNING' and info(s).map then
      local parts = redis.call('HGETALL', K.parts(RUN, s))
      for k = 1, #parts, 2 do
        if string.match(parts[k], '^' .. PF.child .. '%d+$') then kids[#kids + 1] = parts[k + 1] end
      end
    end
  end
  return kids
end

-- Cancel child runs and, in turn, theirs: each stops starting steps, waits
-- for its running ones, compensates what it completed and ends CANCELLED,
-- which tells its parent step. Leaves the script on the last run it opened.
local function cancel_children(kids, reason)
  local k = 1
  while k <= #kids do
    open_run(kids[k])
    forget_end()
    load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.completed, RF.undid})
    local rs = run_state()
    if rs and not terminal(rs) and rs ~= 'CANCELLING' then
      switch_plan(hget(RF.workflow))
      for _, kid in ipairs(running_children()) do kids[#kids + 1] = kid end
      move_run('CANCELLING', {reason = reason})
      wind_down()
      commit()
    end
    k = k + 1
  end
end

-- The children step s started that succeeded: one, or one per element.
local function children_of(s)
  if not info(s).map then
    local kid = hget(s .. SF.child)
    return kid and {kid} or {}
  end
  local kids = {}
  local parts = redis.call('HGETALL', K.parts(RUN, s))
  for k = 1, #parts, 2 do
    if string.match(parts[k], '^' .. PF.children .. '%d+$') then kids[#kids + 1] = parts[k + 1] end
  end
  return kids
end

-- Start undoing a child run that succeeded, as a whole: it is reopened
-- (SUCCEEDED -> COMPENSATING, a reopening), its own saga runs, and when it
-- ends it queues `notify` (the parent step's compensation message). Returns
-- false when the child completed nothing that can be undone.
local function reopen_child(kid, why, notify)
  open_run(kid)
  forget_end()
  load({RF.state, RF.workflow, RF.completed, RF.created_at, RF.key, RF.inflight, RF.undoing})
  if run_state() ~= 'SUCCEEDED' or (hget(RF.completed) or '') == '' then return false end
  switch_plan(hget(RF.workflow))
  move_run('COMPENSATING', {reopened = 'parent'}, REOPENS)
  hset(RF.error, why)
  hset(RF.notify, notify)
  redis.call('HDEL', RK, RF.finished_at)
  for _, k in ipairs(lasting_keys()) do redis.call('PERSIST', k) end
  redis.call('ZADD', K.runs, tonumber(hget(RF.created_at)) or NOW, RUN)
  wind_down()
  commit()
  return true
end
