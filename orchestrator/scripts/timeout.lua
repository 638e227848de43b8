--! requires: run, joins, saga, finish, replies
-- A waiting step's `timeout` passed with no signal (TimeoutArgs): fail it (and
-- the run), or skip it when it says `on_timeout: skip`. A sleep step's time
-- came (sleeps.lua): it succeeds with its wake-up time (epoch seconds) as its
-- output, or fails when its `until` held no time.
-- Replies 'ok', 'stop' {run state}, 'stale' {state}, 'gone'.
local s = A.step
load({RF.state, RF.workflow, RF.left, s .. SF.state})
if not run_state() then return reply('gone') end
if run_state() ~= 'RUNNING' then return reply('stop', {run_state()}) end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'WAITING' then return reply('stale', {step_state(s)}) end
local i = info(s)
hset(s .. SF.finished_at, NOWS)
local wake = hget(s .. SF.wake_at)
if wake then
  move_step(s, 'SUCCEEDED', {reason = 'woke'})
  hset(s .. SF.output, wake)
  settle(s, false)
elseif i.sleep or i['until'] then
  local msg = 'no time at ' .. i['until'] .. ' (epoch seconds, or ISO-8601 with an offset)'
  local err = cjson.encode({type = 'SleepError', message = msg})
  move_step(s, 'FAILED', {error = err})
  hset(s .. SF.error, err)
  fail_run('step ' .. s .. ' failed: SleepError: ' .. msg)
elseif i.on_timeout == 'skip' then
  move_step(s, 'SKIPPED', {reason = 'timeout'})
  settle(s, true)
else
  local msg = 'no signal ' .. i.signal .. ' within ' .. i.wait_timeout .. 's'
  local err = cjson.encode({type = 'SignalTimeoutError', message = msg})
  move_step(s, 'FAILED', {error = err})
  hset(s .. SF.error, err)
  fail_run('step ' .. s .. ' failed: SignalTimeoutError: ' .. msg)
end
commit()
return reply('ok')
