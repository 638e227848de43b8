--! requires: run, joins, saga, finish, replies
-- Deliver a signal (SignalArgs): every step of the run waiting for it
-- (WAITING, `wait_for: NAME`) succeeds with the signal's data as its output,
-- and its dependants are settled.
-- Replies 'ok' {step, ...}; 'none' {step, state, ...} when no step waits for
-- it now; 'stop' {run state}; 'gone'.
load({RF.state, RF.workflow, RF.left})
local rs = run_state()
if not rs then return reply('gone') end
if rs ~= 'RUNNING' then return reply('stop', {rs}) end
use_plan(hget(RF.workflow))
local done, states = {}, {}
for _, s in ipairs(meta().waits[A.name] or {}) do
  local st = step_state(s)
  if st == 'WAITING' then
    move_step(s, 'SUCCEEDED', {signal = A.name})
    hset(s .. SF.output, A.data)
    hset(s .. SF.finished_at, NOWS)
    mark_done(s)
    redis.call('ZREM', K.timeouts, RUN .. '|' .. s)
    settle(s, false)
    done[#done + 1] = s
  else
    states[#states + 1] = s
    states[#states + 1] = st
  end
end
commit()
if #done == 0 then return reply('none', states) end
return reply('ok', done)
