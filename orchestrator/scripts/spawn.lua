--! requires: run, dispatch, saga, finish, replies, children
-- A worker claimed a child workflow step (or one element of it): start the
-- child run and make the step wait for it (SpawnArgs), atomically. A.input
-- is the child's input, bound by the worker; A.context the trace context of
-- the attempt (the child's spans are its children), '' for the run's own.
-- Refused, the step fails for good: the run stopped before the child
-- started, the child would nest deeper than the step's max_depth, or its
-- workflow is not registered.
-- Replies 'started' | 'existing' {child run id}; 'refused' {type, message};
-- 'stale' {why}; 'gone'.
local s, idx, token = A.step, A.index, A.token
local lease_of = lease_member(s, idx, token)
load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.depth, RF.context,
  s .. SF.state, s .. SF.token, s .. SF.attempts})
if not run_state() then redis.call('ZREM', K.leases, lease_of); return reply('gone') end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'RUNNING' then
  redis.call('ZREM', K.leases, lease_of)
  return reply('stale', {step_state(s)})
end
local att = num(s .. SF.attempts)
if idx == '' then
  if hget(s .. SF.token) ~= token then return reply('stale', {'token'}) end
else
  local part = redis.call('HMGET', K.parts(RUN, s), PF.token .. idx, PF.output .. idx,
    PF.attempts .. idx)
  if part[1] ~= token or part[2] then return reply('stale', {'token'}) end
  att = tonumber(part[3])
end
redis.call('ZREM', K.leases, lease_of)
local i = info(s)
local depth = num(RF.depth) + 1
local why
if run_state() ~= 'RUNNING' then
  why = {'RunStopped', 'the run is ' .. run_state() .. ', so its child was not started'}
elseif i.max_depth and depth > i.max_depth then
  why = {'ChildDepthError', 'a child of ' .. i.child .. ' would run at depth ' .. depth ..
    ', beyond max_depth ' .. i.max_depth}
elseif redis.call('HEXISTS', K.plan(i.child), LF.meta) == 0 then
  why = {'ChildNotRegistered', 'workflow ' .. i.child .. ' is not registered'}
end
if why then
  local err = cjson.encode({type = why[1], message = why[2], attempt = att})
  hset(s .. SF.error, err)
  move_step(s, 'FAILED', {attempt = att, error = err, index = index_of(idx)})
  hset(s .. SF.finished_at, NOWS)
  fail_run('step ' .. s .. ' failed: ' .. why[1] .. ': ' .. why[2])
  attempt_over()
  commit()
  return reply('refused', why)
end

local kid = child_id(s, idx, att)
local parent = RUN
local link = RUN .. '|' .. s .. '|' .. idx
local context = A.context ~= '' and A.context or (hget(RF.context) or '')
local created = start_child(kid, i.child, A.input, context, link, inherited(), message(s, idx),
  list_of(i))

-- Back to the parent: the step waits, its attempt still in flight.
open_run(parent)
switch_plan(hget(RF.workflow))
if idx == '' then
  move_step(s, 'WAITING', {attempt = att, child = kid})
  hset(s .. SF.child, kid)
else
  redis.call('HSET', K.parts(RUN, s), PF.child .. idx, kid, PF.children .. idx, kid)
  hset(s .. SF.child, (hget(s .. SF.child) or '') .. kid .. ',')  -- every child, for status
  event({step = s, index = tonumber(idx), child = kid})
end
commit()
return reply(created and 'started' or 'existing', {kid})
