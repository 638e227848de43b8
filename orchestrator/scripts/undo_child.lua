--! requires: run, dispatch, saga, finish, replies, children
-- A worker claimed the compensation of a child workflow step (UndoChildArgs):
-- its children are undone as a whole. A child that succeeded is reopened and
-- runs its own saga (its steps in reverse, its own children likewise); when
-- it ends it queues this step's compensation message again, and the next
-- call finds it ended. The attempt holds no worker meanwhile (its lease goes).
-- Replies 'pending' (a child is compensating), 'done' (nothing left to
-- undo: record the compensation), 'failed' {child, error} (a child's
-- compensation failed for good), 'stale' {state}, 'gone'.
local s, token = A.step, A.token
local lease_of = lease_member(s, '-1', token)
load({RF.state, RF.workflow, s .. SF.state, s .. SF.undo_token, s .. SF.child})
if not run_state() then redis.call('ZREM', K.leases, lease_of); return reply('gone') end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'COMPENSATING' or hget(s .. SF.undo_token) ~= token then
  redis.call('ZREM', K.leases, lease_of)
  return reply('stale', {step_state(s)})
end
local parent = RUN
local notify = undo_message(s)
local why = 'undone as part of run ' .. RUN .. ' (step ' .. s .. ')'
local kids = children_of(s)
local pending, failed = false, nil
for _, kid in ipairs(kids) do
  if reopen_child(kid, why, notify) then pending = true end
  local ks = run_state()
  if ks == 'COMPENSATING' then pending = true end
  if ks == 'COMPENSATION_FAILED' and not failed then failed = {kid, hget(RF.error) or ''} end
end
open_run(parent)
forget_end()
if pending then
  redis.call('ZREM', K.leases, lease_of)
  return reply('pending')
end
if failed then return reply('failed', failed) end
return reply('done')
