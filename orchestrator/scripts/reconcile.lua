--! requires: run, dispatch
-- Re-dispatch work whose message was lost (ReconcileArgs: after, kombu's
-- unacked hash and index, then the run ids to look at, from K.live).
--
-- A Redis killed at the wrong moment can lose a queued step's message while
-- the step stays QUEUED: kombu had moved it to its unacked hash (restored
-- only after the visibility timeout), or BRPOP had popped it and kombu never
-- recorded it. A run is looked at when nothing has been recorded for it for
-- A.after seconds: a RUNNING run's steps, or a COMPENSATING or CANCELLING
-- run's compensation in progress. It is left alone when anything of it is
-- alive: a RUNNING or RETRYING step, an attempt with a live lease, an entry
-- in K.delayed, a message naming it in its queues (or held back there for
-- fairness), or one that kombu handed out less than A.after ago. Otherwise
-- each QUEUED step (or element without output), each gated step whose
-- predicate waits, and a queued compensation gets a new message. Should the old message turn up after all, the claim
-- finds the step running or done and runs nothing. Runs that ended or
-- vanished leave K.live. Replies "run|step|index" for each message sent
-- (index -1: a compensation).
local after = tonumber(A.after)
local sent = {}

-- The compensation in progress (RF.undoing) when it is queued, not running.
local function lost_compensation()
  local s = hget(RF.undoing) or ''
  if s == '' then return nil end  -- attempts still in flight: their leases are watched
  load({s .. SF.state, s .. SF.undo_token})
  if step_state(s) ~= 'COMPENSATING' then return nil end
  local tok = hget(s .. SF.undo_token)
  if tok and redis.call('ZSCORE', K.leases, lease_member(s, '-1', tok)) then return nil end
  return {{s, -1}}
end

-- What of run `id` needs a message (a list of {step, index}), or nil when the
-- run is alive, ended or recently active.
local function lost_work(id)
  open_run(id)
  load({RF.state, RF.workflow})
  local rs = run_state()
  if not rs or terminal(rs) then
    redis.call('SREM', K.live, id)
    return nil
  end
  local last = redis.call('LINDEX', K.events(id), -1)
  if last and NOW - (tonumber(cjson.decode(last).t) or 0) < after then return nil end
  use_plan(hget(RF.workflow))
  if rs == 'COMPENSATING' or rs == 'CANCELLING' then return lost_compensation() end
  if rs ~= 'RUNNING' then return nil end
  local order = meta().order
  local fields = {}
  for k, s in ipairs(order) do fields[k] = s .. SF.state end
  load(fields)
  local work = {}
  for _, s in ipairs(order) do
    local st, i = step_state(s), info(s)
    if st == 'RETRYING' or (st == 'RUNNING' and not i.map) then return nil end
    if i.map and (st == 'QUEUED' or st == 'RUNNING') then
      local parts = K.parts(id, s)
      for k = 0, num(s .. SF.elements) - 1 do
        local part = redis.call('HMGET', parts, PF.output .. k, PF.token .. k)
        if not part[1] then
          if part[2] and redis.call('ZSCORE', K.leases, lease_member(s, k, part[2])) then
            return nil
          end
          work[#work + 1] = {s, k}
        end
      end
    elseif st == 'QUEUED' or (st == 'PENDING' and hget(s .. SF.gated) == '1') then
      work[#work + 1] = {s, ''}
    end
  end
  if #work == 0 then return nil end
  return work
end

-- Whether any of `lines` names run `id` (messages carry the run id as text).
local function named(lines, id)
  for _, line in ipairs(lines) do
    if string.find(line, id, 1, true) then return true end
  end
  return false
end

local candidates = {}
for _, id in ipairs(A.runs) do
  local work = lost_work(id)
  if work then candidates[#candidates + 1] = {id, work} end
end
if #candidates == 0 then return sent end

-- Signs of life shared by every candidate, read once.
local delayed = redis.call('ZRANGE', K.delayed, 0, -1)
local young = redis.call('ZRANGEBYSCORE', A.unacked_index, NOW - after, '+inf')
local handed_out = {}
for k = 1, #young, 500 do
  local got = redis.call('HMGET', A.unacked, unpack(young, k, math.min(k + 499, #young)))
  for _, m in ipairs(got) do if m then handed_out[#handed_out + 1] = m end end
end
local queued = {}

local function in_queue(q, id)
  if not queued[q] then queued[q] = redis.call('LRANGE', q, 0, -1) end
  return named(queued[q], id)
end

-- A message of run id waits in list (the kombu list of its priority), or is
-- held back there for fairness (fair.lua: under the run's fairness key, or
-- under '' once the list holds back every message).
local function waiting_in(list, id, fk)
  if in_queue(list, id) or in_queue(K.fair_held(list, fk), id) then return true end
  return fk ~= '' and in_queue(K.fair_held(list, ''), id)
end

for _, c in ipairs(candidates) do
  local id, work = c[1], c[2]
  local alive = named(delayed, '"r":"' .. id .. '"') or named(handed_out, id)
  open_run(id)
  load({RF.workflow, RF.fairness_key})
  use_plan(hget(RF.workflow))
  local fk = hget(RF.fairness_key) or ''
  for _, w in ipairs(work) do
    alive = alive or waiting_in(list_of(info(w[1])), id, fk)
  end
  if not alive then
    for _, w in ipairs(work) do
      local s, idx = w[1], w[2]
      local i = info(s)
      if idx == -1 then
        push(list_of(i), undo_message(s))
        event({step = s, redispatched = 'its compensation message was lost'})
      else
        redis.call('DEL', K.ready(id, i.queue))
        push(list_of(i), message(s, idx))
        event({step = s, index = index_of(tostring(idx)), redispatched = 'its message was lost'})
      end
      sent[#sent + 1] = id .. '|' .. s .. '|' .. idx
    end
    write_run()
  end
end
flush_pushes()
return sent
