--! requires: run, finish, replies
-- A worker is about to run a step's compensation (UndoClaimArgs).
-- Replies 'run' {attempt inputs with mode 'compensate' and the step's own
-- output after its upstreams'}; 'skip' {state}; 'stop' {run state}; 'gone'.
local s, token = A.step, A.token
load({RF.state, RF.workflow, RF.input, RF.context, s .. SF.state, s .. SF.undo_token, s .. SF.undo_attempts,
  s .. SF.output, s .. SF.undo_queued_at})
local rs = run_state()
if not rs then return reply('gone') end
if rs ~= 'COMPENSATING' and rs ~= 'CANCELLING' then return reply('stop', {rs}) end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'COMPENSATING' then return reply('skip', {step_state(s)}) end
local old = hget(s .. SF.undo_token)
if old and redis.call('ZSCORE', K.leases, lease_member(s, '-1', old)) then
  return reply('skip', {'RUNNING'})
end
local att = num(s .. SF.undo_attempts) + 1
hset(s .. SF.undo_attempts, att)
hset(s .. SF.undo_token, token)
hset(s .. SF.undo_started_at, NOWS)
redis.call('ZADD', K.leases, NOW + tonumber(A.lease), lease_member(s, '-1', token))
event({step = s, compensation = 'started', attempt = att, worker = A.worker})
local inputs = attempt_inputs(s, '', att, 'compensate', SF.undo_queued_at, true)
commit()
return reply('run', inputs)
