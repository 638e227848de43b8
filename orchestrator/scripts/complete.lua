--! requires: run, dispatch, deps, joins, saga, claiming, replies, score
-- Record a step's (or map element's) output and dispatch what became ready
-- (CompleteArgs). A.how says how the output was made: 'call' (the step's
-- dependency was called and answered), 'fallback', 'fallback-after-call'
-- (the dependency was called and failed, then the fallback answered: the
-- failure counts for the breaker), or ''. A.items are the output's elements
-- when something maps over it.
-- Replies 'ok' (recorded, see claiming.lua), 'stale' {why}, 'gone'.
local s, idx, token = A.step, A.index, A.token
join_lane()
-- One HMGET for what this call reads: settling the step (its dependants'
-- joins and states) and, when the caller runs on, the lane's claim of the
-- next step (claim_step), so a chain step reads the run hash once. Each field
-- asked for is a scan of the run hash (a listpack while small), so fields
-- only rare paths read (RF.undoing, the deadline, a map's counts) are left to
-- hget when a path needs them.
local want = {RF.state, RF.workflow, RF.left, RF.inflight, RF.priority, RF.fairness_key,
  s .. SF.state, s .. SF.token, s .. SF.attempts, s .. SF.queued_at, s .. SF.started_at}
if idx ~= '' then
  want[#want + 1] = s .. SF.elements_left
  want[#want + 1] = s .. SF.elements
end
local known = known_info(s)
if known then
  if known.compensable then want[#want + 1] = RF.completed end
  for _, d in ipairs(known.downstreams) do
    want[#want + 1] = d .. SF.upstreams_done
    want[#want + 1] = d .. SF.upstreams_skipped
    want[#want + 1] = d .. SF.state
  end
  if (A.lane_queue or '') ~= '' then
    want[#want + 1] = RF.input
    want[#want + 1] = RF.queued
    if OBSERVE then want[#want + 1] = RF.context end
    if #known.downstreams == 1 then want[#want + 1] = known.downstreams[1] .. SF.attempts end
  end
end
load(want)
-- The attempt is over whatever is recorded below; its lease goes first, so
-- not even a run that has expired can leave it behind.
redis.call('ZREM', K.leases, lease_member(s, idx, token))
if not run_state() then return reply('gone') end
use_plan(hget(RF.workflow))
if step_state(s) ~= 'RUNNING' then return reply('stale', {step_state(s)}) end
local function account(started, attempt)
  local d = info(s).dependency
  if d then
    free_slot(d, token)
    if A.how == 'call' then note(d, 'ok', token); breaker_after(d, s, token, true) end
    if A.how == 'fallback-after-call' then
      note(d, 'fail', token); breaker_after(d, s, token, false)
    end
    if A.how ~= 'call' and A.how ~= 'fallback-after-call' then breaker_return_probe(d, token) end
  end
  if A.how == 'fallback' or A.how == 'fallback-after-call' then
    hset(s .. SF.fallback, '1')
    event({step = s, index = index_of(idx), fallback = true})
  end
  score_attempt(s, 'ok', hget(s .. SF.queued_at), started, attempt)
end

local function keep_items()
  local items = K.items(RUN, s)
  for k = 1, #A.items, 500 do
    local args = {}
    for j = k, math.min(k + 499, #A.items) do
      args[#args + 1] = j - 1
      args[#args + 1] = A.items[j]
    end
    redis.call('HSET', items, unpack(args))
  end
  -- The run may have ended already (a parallel branch failed): its keys are
  -- expiring, and this new one must expire with them rather than outlive it.
  local ttl = redis.call('PTTL', RK)
  if ttl > 0 then redis.call('PEXPIRE', items, ttl) end
  hset(s .. SF.elements, #A.items)
end

local function succeed(output, extra)
  move_step(s, 'SUCCEEDED', extra)
  hset(s .. SF.output, output)
  -- A step that succeeded after failed attempts has no error: the status shows
  -- the outcome, and each failed attempt's error stays in the event history.
  hset(s .. SF.error, '')
  hset(s .. SF.finished_at, NOWS)
  mark_done(s)
  if info(s).mapped_over then keep_items() end
  settle(s, false)
end

-- The whole output of a map step, its elements' outputs in order; refused above the cap.
local function gather(parts)
  local n = num(s .. SF.elements)
  local chunks = {}
  for k = 0, n - 1, 500 do
    local fields = {}
    for j = k, math.min(k + 499, n - 1) do fields[#fields + 1] = PF.output .. j end
    chunks[#chunks + 1] = table.concat(redis.call('HMGET', parts, unpack(fields)), ',')
  end
  local whole = '[' .. table.concat(chunks, ',') .. ']'
  if #whole <= tonumber(A.cap) then return whole, n end
  local err = cjson.encode({type = 'PayloadTooLargeError', message = 'mapped output is ' ..
    #whole .. ' bytes, above ORCH_MAX_PAYLOAD_BYTES=' .. A.cap})
  move_step(s, 'FAILED', {error = err})
  hset(s .. SF.error, err)
  hset(s .. SF.finished_at, NOWS)
  fail_run('step ' .. s .. ' failed: ' .. err)
  return nil
end

if idx == '' then
  if hget(s .. SF.token) ~= token then return reply('stale', {'token'}) end
  account(hget(s .. SF.started_at), num(s .. SF.attempts))
  succeed(A.output, {attempt = num(s .. SF.attempts)})
else
  local parts = K.parts(RUN, s)
  local part = redis.call('HMGET', parts, PF.token .. idx, PF.output .. idx,
    PF.started_at .. idx, PF.attempts .. idx)
  if part[1] ~= token or part[2] then return reply('stale', {'token'}) end
  account(part[3], part[4])
  redis.call('HSET', parts, PF.output .. idx, A.output)
  local left = num(s .. SF.elements_left) - 1
  hset(s .. SF.elements_left, left)
  if left == 0 then
    local whole, n = gather(parts)
    if whole then succeed(whole, {elements = n}) end
  end
end
attempt_over()
return recorded()
