--! requires: run, dispatch, deps, saga, claiming, replies, score
-- Record a failed attempt (FailArgs): retry it after A.delay seconds, or, when
-- A.delay is '', fail the step for good (and the run with it). A.edge names a
-- handoff that broke; A.called says the step's dependency was really called.
-- The engine may veto a retry the caller asked for: 'budget' (the
-- dependency's retry budget is spent) or 'run_stopped' (the run is no longer
-- RUNNING, so a retry could never be promoted).
-- Replies 'ok' (recorded, see claiming.lua), 'stale' {why}, 'gone', or
-- 'fallback' {dependency} when the budget refused and the step has a fallback
-- to run in this same attempt (nothing else was recorded).
local s, idx, token, wait = A.step, A.index, A.token, A.delay
join_lane()
local lease_of = lease_member(s, idx, token)
load({RF.state, RF.workflow, RF.left, RF.inflight, RF.undoing, RF.priority,
  s .. SF.state, s .. SF.token, s .. SF.attempts, s .. SF.queued_at, s .. SF.started_at})
if not run_state() then redis.call('ZREM', K.leases, lease_of); return reply('gone') end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'RUNNING' then
  redis.call('ZREM', K.leases, lease_of)
  return reply('stale', {step_state(s)})
end
local started, attempt = hget(s .. SF.started_at), num(s .. SF.attempts)
if idx == '' then
  if hget(s .. SF.token) ~= token then return reply('stale', {'token'}) end
else
  local part = redis.call('HMGET', K.parts(RUN, s), PF.token .. idx, PF.output .. idx,
    PF.started_at .. idx, PF.attempts .. idx)
  if part[1] ~= token or part[2] then return reply('stale', {'token'}) end
  started, attempt = part[3], part[4]
end
local i = info(s)
local d = i.dependency
local err = cjson.decode(A.error)
local veto = nil
if d and wait ~= '' and not budget_allows(d, token) then
  event({step = s, dependency = d.name, budget = 'denied'})
  if i.fallback then commit(); return reply('fallback', {d.name}) end
  wait, veto = '', 'budget'
  err.message = err.message .. ' (no retry: the retry budget of ' .. d.name .. ' is spent)'
end
redis.call('ZREM', K.leases, lease_of)
if wait ~= '' and run_state() ~= 'RUNNING' then wait, veto = '', 'run_stopped' end
if d then
  free_slot(d, token)
  if A.called == '1' then
    note(d, 'fail', token); breaker_after(d, s, token, false)
  else
    breaker_return_probe(d, token)  -- a probe that never called says nothing of the dependency
  end
end
score_attempt(s, 'fail', hget(s .. SF.queued_at), started, attempt)
score_seconds('failsec:' .. s, NOW - (tonumber(started or '') or NOW))
if A.edge ~= '' then score_count('bad:' .. A.edge) end
if idx ~= '' then err.message = 'element ' .. idx .. ': ' .. err.message end
local encoded = cjson.encode(err)
local att = num(s .. SF.attempts)
hset(s .. SF.error, encoded)
if wait ~= '' then
  if idx == '' then
    move_step(s, 'RETRYING', {attempt = att, error = encoded, delay = tonumber(wait)})
  else
    event({step = s, index = tonumber(idx), retry = true, error = encoded, delay = tonumber(wait)})
  end
  delay(s, idx, list_of(i), message(s, idx), 'retry', tonumber(wait))
else
  move_step(s, 'FAILED', {attempt = att, error = encoded, index = index_of(idx)})
  hset(s .. SF.finished_at, NOWS)
  -- A parallel branch may have ended the run already: the step's own failure
  -- is still recorded, but the run fails once, with the first error.
  fail_run('step ' .. s .. ' failed: ' .. err.type .. ': ' .. err.message)
end
attempt_over()
return recorded(veto, wait)
