--! requires: run, joins, finish, replies
-- A gated step whose `when` predicate was false (SkipArgs): PENDING -> SKIPPED,
-- and its dependants are settled as after a skip.
-- Replies 'ok', 'stop' {run state}, 'stale' {state}, 'gone'.
local s = A.step
load({RF.state, RF.workflow, RF.left, s .. SF.state, s .. SF.gated})
local rs = run_state()
if not rs then return reply('gone') end
if rs ~= 'RUNNING' then return reply('stop', {rs}) end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'PENDING' or hget(s .. SF.gated) ~= '1' then
  return reply('stale', {step_state(s)})
end
hset(s .. SF.gated, '')
move_step(s, 'SKIPPED', {reason = 'when'})
hset(s .. SF.finished_at, NOWS)
settle(s, true)
commit()
return reply('ok')
