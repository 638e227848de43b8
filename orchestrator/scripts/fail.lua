-- Record a failed attempt: schedule a retry after ARGV[9] seconds, or, when
-- ARGV[9] is '', fail the step for good (and the run with it).
-- ARGV[5] step, ARGV[6] element index or '', ARGV[7] token, ARGV[8] error JSON,
-- ARGV[9] retry delay or '', ARGV[10] handoff edge that broke, or '',
-- ARGV[11] '1' when the step's dependency was actually called, ARGV[12..16]
-- the runner (see claiming.lua).
-- Replies {'ok', ended-state}, {'stale', why}, {'gone'}, or {'fallback', dep}
-- when the retry budget refused a retry and the step has a fallback to run.
local s, idx, token, err, delay, edge = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local called = ARGV[11] == '1'
local runner = runner_args(12)
local lease_of = lease_member(s, idx, token)
load({'state', 'wf', 'left', 'inflight', 'undoing', s .. '.state', s .. '.tok', s .. '.att'})
if not run_state() then redis.call('ZREM', LEASES, lease_of); return {'gone'} end
use_plan(hget('wf'))
if step_state(s) ~= 'RUNNING' then redis.call('ZREM', LEASES, lease_of); return {'stale', step_state(s)} end
local PT = RK .. ':parts:' .. s
if idx == '' then
  if hget(s .. '.tok') ~= token then return {'stale', 'token'} end
else
  local part = redis.call('HMGET', PT, 't' .. idx, 'o' .. idx)
  if part[1] ~= token or part[2] then return {'stale', 'token'} end
end
local i = info(s)
local d = i.dep
if d and delay ~= '' and not budget_allows(d, token) then
  event({step = s, dependency = d.n, budget = 'denied'})
  if i.fb then flush(); return {'fallback', d.n} end
  delay = ''
  local e = cjson.decode(err)
  e.message = e.message .. ' (no retry: the retry budget of ' .. d.n .. ' is spent)'
  err = cjson.encode(e)
end
redis.call('ZREM', LEASES, lease_of)
-- A run that has already ended (or is winding down) starts nothing new, so a
-- retry could never be promoted: the step's failure is final.
if run_state() ~= 'RUNNING' then delay = '' end
if d then
  free_slot(d, token)
  if called then note(d, 'fail', token); breaker_after(d, s, token, false) end
end
if edge ~= '' then redis.call('HINCRBY', P .. 'stats:' .. hget('wf'), 'bad:' .. edge, 1) end
local att = num(s .. '.att')
hset(s .. '.err', err)
if delay ~= '' then
  if idx == '' then
    move_step(s, 'RETRYING', {attempt = att, error = err, delay = tonumber(delay)})
  else
    event({step = s, index = tonumber(idx), retry = true, error = err, delay = tonumber(delay)})
  end
  local due = cjson.encode({r = RUN, s = s, i = idx, q = i.q, m = message(i, idx ~= '' and idx or nil)})
  redis.call('ZADD', P .. 'delayed', NOW + tonumber(delay), due)
else
  move_step(s, 'FAILED', {attempt = att, error = err, index = idx ~= '' and tonumber(idx) or nil})
  hset(s .. '.f', NOWS)
  -- A parallel branch may have ended the run already: the step's own failure
  -- is still recorded, but the run fails once, with the first error.
  local e = cjson.decode(err)
  fail_run('step ' .. s .. ' failed: ' .. e.type .. ': ' .. e.message)
end
attempt_over()
return recorded(runner)
