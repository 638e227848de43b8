--! requires: run, saga, finish, replies, children
-- Cancel a run (CancelArgs): it stops starting steps (queued ones are refused
-- when a worker picks them up), cancels its child runs, waits for running
-- ones (and for the children to end), compensates the
-- completed ones and ends CANCELLED. Idempotent; a cancel during compensation
-- joins it rather than restarting it.
-- Replies 'ok' {state after}, 'final' {state}, 'already' {state}, 'gone'.
load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.completed})
local rs = run_state()
if not rs then return reply('gone') end
if terminal(rs) then return reply('final', {rs}) end
if rs == 'CANCELLING' then return reply('already', {rs}) end
use_plan(hget(RF.workflow))
-- Its running children are cancelled first, and theirs in turn (children.lua);
-- each tells its parent step when it has ended.
local kids = running_children()
if #kids > 0 then
  cancel_children(kids, 'parent run ' .. RUN .. ' cancelled')
  open_run(A.run)
  forget_end()
  switch_plan(hget(RF.workflow))
end
move_run('CANCELLING', {reason = A.reason})
wind_down()
commit()
return reply('ok', {ended_state() or 'CANCELLING'})
