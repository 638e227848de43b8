-- A waiting step's `timeout` passed with no signal: fail it (and the run), or
-- skip it when it says `on_timeout: skip`. ARGV[5] step.
local s = ARGV[5]
load({'state', 'wf', 'left', s .. '.state'})
if run_state() ~= 'RUNNING' then return {'stop', run_state() or 'gone'} end
use_plan(hget('wf'))
if step_state(s) ~= 'WAITING' then return {'stale', step_state(s)} end
local i = info(s)
hset(s .. '.f', NOWS)
if i.ot == 'skip' then
  move_step(s, 'SKIPPED', {reason = 'timeout'})
  settle(s, true)
else
  local msg = 'no signal ' .. i.w .. ' within ' .. i.to .. 's'
  local err = cjson.encode({type = 'SignalTimeoutError', message = msg})
  move_step(s, 'FAILED', {error = err})
  hset(s .. '.err', err)
  fail_run('step ' .. s .. ' failed: SignalTimeoutError: ' .. msg)
end
flush()
return {'ok', ended or ''}
