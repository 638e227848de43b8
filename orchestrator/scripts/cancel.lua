--! requires: run, saga, finish, replies
-- Cancel a run (CancelArgs): it stops starting steps (queued ones are refused
-- when a worker picks them up), waits for running ones, compensates the
-- completed ones and ends CANCELLED. Idempotent; a cancel during compensation
-- joins it rather than restarting it.
-- Replies 'ok' {state after}, 'final' {state}, 'already' {state}, 'gone'.
load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.completed})
local rs = run_state()
if not rs then return reply('gone') end
if terminal(rs) then return reply('final', {rs}) end
if rs == 'CANCELLING' then return reply('already', {rs}) end
use_plan(hget(RF.workflow))
move_run('CANCELLING', {reason = A.reason})
wind_down()
commit()
return reply('ok', {ended_state() or 'CANCELLING'})
