--! requires: run, dispatch, saga, finish, replies, score
-- Record the outcome of a compensation attempt (UndoDoneArgs): A.error is ''
-- when it succeeded; A.delay is the retry delay, or '' when the failure is final.
-- Replies 'ok' {'compensated' | 'retrying' | 'failed'}, 'stale' {state}, 'gone'.
local s, token = A.step, A.token
load({RF.state, RF.workflow, RF.inflight, RF.undoing, RF.error,
  s .. SF.state, s .. SF.undo_token, s .. SF.undo_attempts})
redis.call('ZREM', K.leases, lease_member(s, '-1', token))
local rs = run_state()
if not rs then return reply('gone') end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'COMPENSATING' or hget(s .. SF.undo_token) ~= token then
  return reply('stale', {step_state(s)})
end
local att = num(s .. SF.undo_attempts)
local outcome
if A.error == '' then
  move_step(s, 'COMPENSATED', {attempt = att})
  hset(s .. SF.undo_finished_at, NOWS)
  hset(RF.undoing, '')
  score_count('undo:ok')
  wind_down()
  outcome = 'compensated'
elseif A.delay ~= '' then
  local wait = tonumber(A.delay)
  hset(s .. SF.error, A.error)
  event({step = s, compensation = 'retry', attempt = att, error = A.error, delay = wait})
  delay(s, '-1', list_of(info(s)), undo_message(s), 'undo', wait)
  outcome = 'retrying'
else
  hset(s .. SF.error, A.error)
  hset(s .. SF.undo_finished_at, NOWS)
  move_step(s, 'COMPENSATION_FAILED', {attempt = att, error = A.error})
  score_count('undo:fail')
  hset(RF.undoing, '')
  -- What made the run compensate, restored if an operator reopens it.
  hset(RF.cause, hget(RF.error) or '')
  local e = cjson.decode(A.error)
  local why = 'compensation of step ' .. s .. ' failed: ' .. e.type .. ': ' .. e.message
  if rs == 'COMPENSATING' then
    finish_run('COMPENSATION_FAILED', why)
  else
    finish_run('CANCELLED', why)
  end
  outcome = 'failed'
end
commit()
return reply('ok', {outcome})
