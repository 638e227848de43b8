--! requires: run, dispatch, deps, finish, replies, children
--! cold: send_entry, spare_width
-- Claiming attempts, and the runner lane: a worker that runs more than one
-- step per Celery message.
--
-- claim_step records that a worker starts an attempt, or says why it must
-- not; it answers (kind, payload) for the reply builder. Both claim.lua (a
-- worker took a step's message) and the lane below use it.
--
-- The lane. When complete.lua or fail.lua is called by a worker willing to go
-- on (A.lane_queue is set), the steps it makes ready on that worker's queue
-- are pooled (dispatch.lua) instead of each getting a message. The worker
-- claims one itself, in this same call, and runs it next without a broker
-- hop; as many others as there are idle worker processes on the queue
-- (spare_width, from the workers' capacity beats) get a message of their own,
-- so they run in parallel; the rest wait in the run's ready list, which every
-- lane of the run drains. A lane never leaves the ready list non-empty
-- without holding a lease (its next attempt) or queueing a message that takes
-- over the list, so a lost worker strands nothing: its lease expires and the
-- retry it causes drains the list.

-- Dependency admission: the breaker, then a concurrency slot, then a rate
-- token. Returns the attempt's mode, or nil and the wait reply's payload.
local function admit(i, s, idx, token, lease, att)
  local d = i.dependency
  if not d then return 'task' end
  if not breaker_admits(d, s, token) then
    local mode = i.fallback and 'fallback' or 'open'
    event({step = s, dependency = d.name, breaker = 'open', outcome = mode})
    return mode
  end
  local why, wait = nil, 0
  -- A rate token reserved on an earlier visit (see take_token) is used now.
  local rsv_key, rsv_field = RK, s .. SF.reserved
  if idx ~= '' then rsv_key, rsv_field = K.parts(RUN, s), PF.reserved .. idx end
  local reserved = d.rate and redis.call('HDEL', rsv_key, rsv_field) == 1
  if not take_slot(d, token, lease) then
    -- Spread the waiters: a fraction of a second, varied by the token.
    why, wait = 'concurrency', 0.1 + (tonumber(string.sub(token, 1, 4), 16) / 65535) * 0.4
    if reserved then redis.call('HSET', rsv_key, rsv_field, '1') end
  elseif not reserved then
    wait = take_token(d)
    if wait > 0 then
      free_slot(d, token)
      why = 'rate'
      redis.call('HSET', rsv_key, rsv_field, '1')
    end
  end
  if why then
    breaker_return_probe(d, token)
    delay(s, idx, list_of(i), message(s, idx), 'admit', wait)
    event({step = s, index = index_of(idx), dependency = d.name, wait = why, delay = wait})
    return nil, {why, tostring(wait)}
  end
  if att == 1 then note(d, 'first', token) end
  return 'task'
end

-- Record the start of an admitted attempt: state, token, lease, in flight.
local function start_attempt(s, idx, st, token, worker, lease, att, mode)
  leave_backlog()
  if idx == '' then
    move_step(s, 'RUNNING', {attempt = att, worker = worker, mode = mode ~= 'task' and mode or nil})
    hset(s .. SF.token, token)
    hset(s .. SF.started_at, NOWS)
    hset(s .. SF.attempts, att)
  else
    if st == 'QUEUED' then
      move_step(s, 'RUNNING', {worker = worker})
      hset(s .. SF.started_at, NOWS)
    end
    redis.call('HSET', K.parts(RUN, s), PF.token .. idx, token, PF.attempts .. idx, att,
      PF.started_at .. idx, NOWS)
    hset(s .. SF.attempts, num(s .. SF.attempts) + 1)
  end
  hset(s .. SF.worker, worker)
  hset(RF.inflight, num(RF.inflight) + 1)
  redis.call('ZADD', K.leases, NOW + lease, lease_member(s, idx, token))
end

-- by_lane: the lane claims a step it queued itself (QUEUED, so never gated).
local function claim_step(s, idx, token, worker, lease, gate_open, by_lane)
  local want = {RF.state, RF.workflow, RF.input, RF.inflight, RF.priority, RF.queued,
    s .. SF.state, s .. SF.attempts, s .. SF.queued_at}
  if not by_lane then want[#want + 1] = s .. SF.gated end
  if OBSERVE then want[#want + 1] = RF.context end
  local known = known_info(s)
  if known then
    for _, u in ipairs(known.upstreams) do want[#want + 1] = u .. SF.output end
  end
  load(want)
  local rs = run_state()
  if not rs then return 'gone' end
  use_plan(hget(RF.workflow))
  local i = info(s)
  local st = step_state(s)
  if i.child then  -- a child workflow step whose child may have ended (children.lua)
    local kid = waiting_child(s, idx, st)
    if kid then return collect_child(s, idx, kid, token, worker, lease) end
  end
  if rs ~= 'RUNNING' then return 'stop', {rs} end
  local att = num(s .. SF.attempts) + 1

  if idx == '' and st == 'PENDING' and hget(s .. SF.gated) == '1' then
    if not gate_open then return 'gate', attempt_inputs(s, idx, att, 'gate', SF.queued_at) end
    hset(s .. SF.gated, '')
    if i.signal then  -- a gated approval: the predicate says it is needed
      wait_for_signal(s, i)
      return 'waiting', {s}
    end
    move_step(s, 'QUEUED', {when = true})
    st = 'QUEUED'
  end
  if idx == '' then
    if st ~= 'QUEUED' then return 'skip', {st} end
  else
    if st ~= 'QUEUED' and st ~= 'RUNNING' then return 'skip', {st} end
    local part = redis.call('HMGET', K.parts(RUN, s), PF.token .. idx, PF.output .. idx,
      PF.attempts .. idx)
    if part[2] then return 'skip', {'SUCCEEDED'} end
    if part[1] and redis.call('ZSCORE', K.leases, lease_member(s, idx, part[1])) then
      return 'skip', {'RUNNING'}
    end
    att = tonumber(part[3] or '0') + 1
  end
  local mode, waited = admit(i, s, idx, token, lease, att)
  if not mode then return 'wait', waited end
  start_attempt(s, idx, st, token, worker, lease, att, mode)
  return 'run', attempt_inputs(s, idx, att, mode, SF.queued_at)
end

-- An entry of the ready list: "step" or "step|element".
local function split(e)
  local s, idx = string.match(e, '^([^|]+)|?(.*)$')
  return s, idx
end
-- Give entry e a message of its own, on the list of its priority.
local function send_entry(e)
  local s, idx = split(e)
  local i = info(s)
  push(list_of(i), message(s, idx))
end

-- Whether the lane must yield before its next step at priority p on queue q:
-- work of a higher priority waits there, or its own list holds work back for
-- fairness (fair.lua), so its run's next step takes its turn with the other
-- tenants'. One SMEMBERS of K.levels (the levels the queue ever used, and
-- 'h' .. p for a list holding back), then one LLEN per higher level in use.
local function outranked(q, p)
  local mine = 'h' .. p
  for _, used in ipairs(redis.call('SMEMBERS', K.levels(q))) do
    if used == mine then return true end
    local higher = tonumber(used)
    if higher and higher > p and redis.call('LLEN', list_at(q, higher)) > 0 then return true end
  end
  return false
end

-- How many more worker processes consume queue q than the one calling: each
-- live worker beats "{hostname}|{concurrency}" into K.capacity(q). With no
-- beat at all, every pooled entry gets its own message, as without a lane.
local function spare_width(q)
  local width = queue_width(q)
  if not width then return math.huge end
  return width - 1
end

-- Give out what this script pooled, then claim the lane's next attempt:
-- {step, index, <attempt inputs>}, or nil when it has nothing to run (or is
-- yielding: its slice is over, or work of a higher priority waits on its
-- queue; it hands its next entry back to the queue as a message).
local function hand_out(token, worker, lease, yielding)
  local q = lane_queue()
  local ready = K.ready(RUN, q)
  local pooled = take_pooled()
  local mine = table.remove(pooled, 1)
  if #pooled > 0 then
    local spare, rest = spare_width(q), {}
    for k, e in ipairs(pooled) do
      if k <= spare then send_entry(e) else rest[#rest + 1] = e end
    end
    for k = 1, #rest, 500 do
      redis.call('RPUSH', ready, unpack(rest, k, math.min(k + 499, #rest)))
    end
  end
  if run_state() ~= 'RUNNING' then return nil end
  for _ = 1, 50 do
    local e = mine or redis.call('LPOP', ready)
    mine = nil
    if not e then return nil end
    local s, idx = split(e)
    local p = priority_of(info(s))
    if yielding or outranked(q, p) then send_entry(e); return nil end
    local kind, payload = claim_step(s, idx, token, worker, lease, false, true)
    if kind == 'run' then return {s, idx, payload} end
    if kind == 'stop' or kind == 'gone' then return nil end
  end
  -- Many entries in a row had to wait (a rate limit, say): a message takes over the list.
  local e = redis.call('LPOP', ready)
  if e then send_entry(e) end
  return nil
end

-- complete.lua and fail.lua: take part in the lane when the caller runs on.
local function join_lane()
  if (A.lane_queue or '') ~= '' then open_lane(A.lane_queue) end
end

-- The reply of a script that recorded an outcome:
--   {'ok' | 'retry' | 'veto', ended, notes, [delay | veto reason,] next step, next index, <inputs>}
-- 'retry' (a retry was scheduled) carries its delay, 'veto' (the engine turned a
-- requested retry into a final failure) its reason; the lane's next attempt, if any, follows.
local function recorded(veto, retry_delay)
  local nxt = nil
  if lane_queue() then
    nxt = hand_out(A.lane_token, A.lane_worker, tonumber(A.lane_lease), A.lane_yield == '1')
  end
  commit()
  local kind, payload = 'ok', {}
  if veto then kind, payload = 'veto', {veto}
  elseif (retry_delay or '') ~= '' then kind, payload = 'retry', {retry_delay} end
  if nxt then
    payload[#payload + 1] = nxt[1]
    payload[#payload + 1] = nxt[2]
    for k = 1, #nxt[3] do payload[#payload + 1] = nxt[3][k] end
  end
  return reply(kind, payload)
end
