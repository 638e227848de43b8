--! requires: run, dispatch, fair
-- Move entries of K.delayed whose time has come back onto their Celery queue
-- (PromoteArgs; entries are built by dispatch.lua's delay). Safe to run from
-- every worker at once: each entry is taken by exactly one call. An entry
-- whose run or step has moved on meanwhile is dropped. Replies the count moved.
local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', NOW, 'LIMIT', 0, tonumber(A.batch))
local moved = 0

-- Whether entry d still has work to do, and the step's move back to QUEUED for a retry.
local function still_due(d)
  load({RF.state, d.s .. SF.state})
  local rs, st = run_state(), step_state(d.s)
  if d.k == 'undo' then
    return (rs == 'COMPENSATING' or rs == 'CANCELLING') and st == 'COMPENSATING'
  end
  if rs ~= 'RUNNING' then return false end
  if d.k == 'admit' then return st == 'QUEUED' or (d.i ~= '' and st == 'RUNNING') end
  if d.i ~= '' then return st == 'RUNNING' end  -- an element's retry: its map step runs on
  if st ~= 'RETRYING' or not move_step(d.s, 'QUEUED') then return false end
  hset(d.s .. SF.queued_at, NOWS)
  return true
end

-- A run whose concurrency slot came free (dispatch.lua leave_slot): it starts now.
local function start_run()
  load({RF.state, RF.workflow, RF.priority, RF.fairness_key, RF.queued})
  if run_state() ~= 'PENDING' then return false end
  use_plan(hget(RF.workflow))
  move_run('RUNNING', {slot = true})
  for _, r in ipairs(meta().roots) do dispatch(r) end
  return true
end

for _, member in ipairs(due) do
  redis.call('ZREM', K.delayed, member)
  local d = cjson.decode(member)
  open_run(d.r)
  if d.k == 'start' then
    if start_run() then moved = moved + 1 end
  elseif still_due(d) then
    push(d.q, d.m)
    moved = moved + 1
  end
  write_run()
end
flush_pushes()
-- A worker killed between taking a message and claiming it released nothing: every
-- promoter tops up the lists that hold work back for fairness.
for _, list in ipairs(redis.call('SMEMBERS', K.fair_lists)) do release(list) end
return moved
