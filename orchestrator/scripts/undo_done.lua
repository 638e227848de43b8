-- Record the outcome of a compensation attempt. ARGV[5] step, ARGV[6] token,
-- ARGV[7] error JSON ('' when it succeeded), ARGV[8] retry delay ('' = final).
local s, token, err, delay = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
load({'state', 'wf', 'inflight', 'undoing', 'error', s .. '.state', s .. '.ctok', s .. '.catt'})
redis.call('ZREM', LEASES, lease_member(s, '-1', token))
local rs = run_state()
if not rs then return {'gone'} end
use_plan(hget('wf'))
if step_state(s) ~= 'COMPENSATING' or hget(s .. '.ctok') ~= token then
  return {'stale', step_state(s)}
end
local att = num(s .. '.catt')
if err == '' then
  move_step(s, 'COMPENSATED', {attempt = att})
  hset(s .. '.f', NOWS)
  hset('undoing', '')
  wind_down()
elseif delay ~= '' then
  hset(s .. '.err', err)
  event({step = s, compensation = 'retry', attempt = att, error = err, delay = tonumber(delay)})
  local due = cjson.encode({r = RUN, s = s, i = '-1', q = info(s).q, c = 1, m = undo_message(info(s))})
  redis.call('ZADD', P .. 'delayed', NOW + tonumber(delay), due)
else
  hset(s .. '.err', err)
  move_step(s, 'COMPENSATION_FAILED', {attempt = att, error = err})
  hset('undoing', '')
  hset('cause', hget('error') or '')  -- what made the run compensate, restored if it is reopened
  local e = cjson.decode(err)
  local why = 'compensation of step ' .. s .. ' failed: ' .. e.type .. ': ' .. e.message
  if rs == 'COMPENSATING' then
    finish_run('COMPENSATION_FAILED', why)
  else
    finish_run('CANCELLED', why)
  end
end
flush()
return {'ok', ended or ''}
