-- Claiming attempts, and the runner: a worker that runs more than one step
-- per Celery message.
--
-- claim_step records that a worker starts an attempt (or says why it must
-- not). Both claim.lua (a worker took a step's message) and the runner below
-- use it.
--
-- The runner. When complete.lua or fail.lua is called by a worker willing to
-- go on (RUNNER is set), the steps it makes ready on that worker's queue are
-- not all given a message: they are "pooled". The worker claims one itself,
-- in this same call, and runs it next without a broker hop; as many others as
-- there are idle worker processes on the queue (`spare_width`, from the
-- workers' capacity beats) get a message of their own, so they run in
-- parallel; the rest wait in the run's ready list, which every runner of the
-- run drains. A runner never leaves the ready list non-empty without holding a
-- lease (its next attempt) or queueing a message that takes over the list, so
-- a lost worker strands nothing: its lease expires and the retry it causes
-- drains the list.

local function claim_step(s, idx, token, worker, lease, gate)
  local want = {'state', 'wf', 'input', 'inflight', s .. '.state', s .. '.att', s .. '.gate'}
  if infos[s] then
    for _, u in ipairs(infos[s].up) do want[#want + 1] = u .. '.out' end
  end
  load(want)
  local rs = run_state()
  if not rs then return {'gone'} end
  if rs ~= 'RUNNING' then return {'stop', rs} end
  use_plan(hget('wf'))
  local i = info(s)
  local st = step_state(s)
  local PT = RK .. ':parts:' .. s
  local att = num(s .. '.att') + 1

  -- The step's inputs, as the step (or its predicate) receives them.
  local function reply(mode)
    local outs = {}
    for k, u in ipairs(i.up) do outs[k] = u .. '.out' end
    load(outs)
    local r = {'run', tostring(att), hget('input'), mode}
    for _, u in ipairs(i.up) do
      r[#r + 1] = u
      if idx ~= '' and u == i.m then
        r[#r + 1] = redis.call('HGET', RK .. ':items:' .. u, idx)
      else
        r[#r + 1] = hget(u .. '.out')
      end
    end
    return r
  end

  if idx == '' and st == 'PENDING' and hget(s .. '.gate') == '1' then
    if gate ~= 'open' then return reply('gate') end
    hset(s .. '.gate', '')
    if i.w then  -- a gated approval: the predicate says it is needed
      wait_for_signal(s, i)
      return {'waiting', s}
    end
    move_step(s, 'QUEUED', {when = true})
    st = 'QUEUED'
  end
  if idx == '' then
    if st ~= 'QUEUED' then return {'skip', st} end
  else
    if st ~= 'QUEUED' and st ~= 'RUNNING' then return {'skip', st} end
    local part = redis.call('HMGET', PT, 't' .. idx, 'o' .. idx, 'a' .. idx)
    if part[2] then return {'skip', 'SUCCEEDED'} end
    if part[1] and redis.call('ZSCORE', LEASES, lease_member(s, idx, part[1])) then
      return {'skip', 'RUNNING'}
    end
    att = tonumber(part[3] or '0') + 1
  end

  -- Dependency admission: the breaker, then a concurrency slot, then a rate token.
  local mode, d = 'task', i.dep
  if d then
    if not breaker_admits(d, s, token) then
      mode = i.fb and 'fallback' or 'open'
      event({step = s, dependency = d.n, breaker = 'open', outcome = mode})
    else
      local why, wait = nil, 0
      -- A rate token reserved on an earlier visit (see take_token) is used now.
      local rsv_key, rsv_field = RK, s .. '.rsv'
      if idx ~= '' then rsv_key, rsv_field = PT, 'r' .. idx end
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
        local due = cjson.encode({r = RUN, s = s, i = idx, q = i.q, w = 1,
          m = message(i, idx ~= '' and idx or nil)})
        redis.call('ZADD', P .. 'delayed', NOW + wait, due)
        event({step = s, index = idx ~= '' and tonumber(idx) or nil, dependency = d.n,
          wait = why, delay = wait})
        return {'wait', why, tostring(wait)}
      end
      if att == 1 then note(d, 'first', token) end
    end
  end

  if idx == '' then
    move_step(s, 'RUNNING', {attempt = att, worker = worker, mode = mode ~= 'task' and mode or nil})
    hset(s .. '.tok', token)
    hset(s .. '.s', NOWS)
    hset(s .. '.att', att)
  else
    if st == 'QUEUED' then
      move_step(s, 'RUNNING', {worker = worker})
      hset(s .. '.s', NOWS)
    end
    redis.call('HSET', PT, 't' .. idx, token, 'a' .. idx, att)
    hset(s .. '.att', num(s .. '.att') + 1)
  end
  hset(s .. '.by', worker)
  hset('inflight', num('inflight') + 1)
  redis.call('ZADD', LEASES, NOW + lease, lease_member(s, idx, token))
  return reply(mode)
end

-- An entry of the ready list: "step" or "step|element".
local function split(e)
  local s, idx = string.match(e, '^([^|]+)|?(.*)$')
  return s, idx
end
local function entry_message(e)
  local s, idx = split(e)
  return message(info(s), idx ~= '' and idx or nil)
end

-- How many more worker processes consume queue q than the one calling: each
-- live worker beats "{hostname}|{concurrency}" into P capacity:{q}. With no
-- beat at all, every pooled entry gets its own message, as without a runner.
local function spare_width(q)
  local beats = redis.call('ZRANGEBYSCORE', P .. 'capacity:' .. q, NOW, '+inf')
  if #beats == 0 then return math.huge end
  local total = 0
  for _, b in ipairs(beats) do total = total + (tonumber(string.match(b, '|(%d+)$')) or 1) end
  return total - 1
end

-- Give out what this script pooled, then claim the runner's next attempt:
-- {'next', step, index, <claim reply>}, or nil when it has nothing to run (or
-- is yielding: it hands its next entry back to the queue as a message).
local function hand_out(token, worker, lease, yielding)
  local q = RUNNER.q
  local RL = RK .. ':ready:' .. q
  local mine = table.remove(pooled, 1)
  if #pooled > 0 then
    local spare, rest = spare_width(q), {}
    for k, e in ipairs(pooled) do
      if k <= spare then push(q, entry_message(e)) else rest[#rest + 1] = e end
    end
    for k = 1, #rest, 500 do redis.call('RPUSH', RL, unpack(rest, k, math.min(k + 499, #rest))) end
  end
  if run_state() ~= 'RUNNING' then return nil end
  for _ = 1, 50 do
    local e = mine or redis.call('LPOP', RL)
    mine = nil
    if not e then return nil end
    if yielding then push(q, entry_message(e)); return nil end
    local s, idx = split(e)
    local r = claim_step(s, idx, token, worker, lease, '')
    if r[1] == 'run' then return {'next', s, idx, unpack(r)} end
    if r[1] == 'stop' or r[1] == 'gone' then return nil end
  end
  -- Many entries in a row had to wait (a rate limit, say): a message takes over the list.
  local e = redis.call('LPOP', RL)
  if e then push(q, entry_message(e)) end
  return nil
end

-- ARGV[k..k+4] of complete.lua and fail.lua: the runner's queue ('' when the
-- worker goes no further), its next attempt's token, the worker, the lease
-- seconds, and 'yield' once it has run long enough for one message.
local function runner_args(k)
  if (ARGV[k] or '') == '' then return nil end
  RUNNER = {q = ARGV[k]}
  return {ARGV[k + 1], ARGV[k + 2], tonumber(ARGV[k + 3]), ARGV[k + 4] == 'yield'}
end

-- The reply of a script that recorded an outcome, with the runner's next attempt.
local function recorded(ra)
  local nxt = ra and hand_out(unpack(ra)) or nil
  flush()
  if nxt then return {'ok', ended or '', unpack(nxt)} end
  return {'ok', ended or ''}
end
