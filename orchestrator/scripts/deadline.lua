--! requires: run, saga, finish, replies, children
-- A run's deadline passed (DeadlineArgs; overdue.lua handed it to this
-- caller): cancel it as cancel.lua does, cancelling its child runs, waiting
-- for running steps and compensating completed ones, with the deadline as the reason and, unless
-- the run already failed, as its error.
-- Replies as cancel.lua: 'ok' {state after}, 'final' {state}, 'already' {state}, 'gone'.
load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.completed, RF.deadline, RF.error})
local rs = run_state()
if not rs then return reply('gone') end
if terminal(rs) then return reply('final', {rs}) end
if rs == 'CANCELLING' then return reply('already', {rs}) end
use_plan(hget(RF.workflow))
local secs = tonumber(hget(RF.deadline) or '0')
local span = string.format('%gs', secs)
if secs >= 3600 and secs % 3600 == 0 then
  span = string.format('%dh', secs / 3600)
elseif secs >= 60 and secs % 60 == 0 then
  span = string.format('%dm', secs / 60)
end
local why = 'deadline of ' .. span .. ' passed'
local kids = running_children()
if #kids > 0 then
  cancel_children(kids, 'parent run ' .. RUN .. ': ' .. why)
  open_run(A.run)
  forget_end()
  switch_plan(hget(RF.workflow))
  load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.completed, RF.deadline, RF.error})
end
move_run('CANCELLING', {reason = why})
if (hget(RF.error) or '') == '' then hset(RF.error, why) end
wind_down()
commit()
return reply('ok', {ended_state() or 'CANCELLING'})
