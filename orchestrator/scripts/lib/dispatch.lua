--! requires: run, sleeps, fair
--! cold: undo_message, delay, leave_slot, wait_for_signal
-- Dispatch: turning a step that became ready into work. Messages are built
-- from the step's template (messages.py) by one function, render; they are
-- collected per kombu list and pushed once by flush_pushes. A step that must
-- wait (a retry's backoff, a dependency limit, a compensation's retry) goes
-- into K.delayed through one builder, delay, whose entries promote.lua reads:
--   {r = run, s = step, i = element index or '', q = kombu list, m = message,
--    k = 'retry' | 'admit' | 'undo'}
-- (and, from leave_slot below, k = 'start': a run whose concurrency slot came free).
-- When the caller is a runner lane (claiming.lua), steps ready on its queue
-- are pooled instead of getting a message each, and the lane hands them out.
--
-- Priority: a run's priority p (0-9, higher runs sooner; RF.priority, or the
-- step's own in its plan record) picks the kombu list of its messages: level
-- 9 - p of the step's queue, the plain list for p = 9. Workers poll levels
-- 0..9 in order (workers/app.py), so work of a higher priority always goes
-- first; messages.priority_list is the same mapping in Python.
local pushes, held_in, noted, seq = {}, {}, {}, 0
local lane, pooled = nil, {}
local QSEP = '\6\22'

local function run_priority() return tonumber(hget(RF.priority) or '0') end
local function priority_of(i) return i.priority or run_priority() end
local function list_at(queue, p)
  local level = 9 - p
  if level == 0 then return queue end
  return queue .. QSEP .. level
end
local function list_of(i) return list_at(i.queue, priority_of(i)) end

-- Remember that the queue of list gets messages of its priority, when above 0:
-- a lane then checks only the levels ever used (claiming.lua outranked).
local function note_level(list)
  if noted[list] then return end
  noted[list] = true
  local queue, level = string.match(list, '^(.-)\6\22(%d)$')
  if level == '9' then return end
  local q = queue or list
  redis.call('SADD', K.levels(q), 9 - tonumber(level or '0'))
end

-- One pass over the template fills every placeholder (messages.py): '@' is in
-- no name a template carries (workflows, steps, queues, tasks), and one
-- missing from the table (@IDX@ outside a map) is left as it is.
local function render(template, idx, tag, p)
  seq = seq + 1
  local subs = {RUN = RUN, PRI = tostring(9 - p), TAG = RUN .. '.' .. NOWS .. '.' .. tag .. seq}
  if idx ~= nil and idx ~= '' then subs.IDX = tostring(idx) end
  return (string.gsub(template, '@(%u+)@', subs))
end
local function message(s, idx)
  return render(template(s, LF.message), idx, '', priority_of(info(s)))
end
local function undo_message(s)
  return render(template(s, LF.undo_message), nil, 'u', priority_of(info(s)))
end

-- A message for list: pushed at the end of the call, or held back for
-- fairness (fair.lua) and released in turn.
local function push(list, msg)
  local q = pushes[list]
  if not q then
    q = {}
    pushes[list] = q
    note_level(list)
  end
  if must_hold(list, #q) then
    hold(list, msg)
    held_in[list] = true
    return
  end
  q[#q + 1] = msg
end
local function flush_pushes()
  for list, msgs in pairs(pushes) do
    for k = 1, #msgs, 500 do
      redis.call('LPUSH', list, unpack(msgs, k, math.min(k + 499, #msgs)))
    end
  end
  pushes = {}
  for list in pairs(held_in) do release(list) end
  held_in = {}
end

local function delay(s, idx, queue, msg, kind, seconds)
  local entry = cjson.encode({r = RUN, s = s, i = idx or '', q = queue, m = msg, k = kind})
  redis.call('ZADD', K.delayed, NOW + seconds, entry)
end

local function open_lane(queue) lane = queue end
local function lane_queue() return lane end
local function take_pooled()
  local taken = pooled
  pooled = {}
  return taken
end

-- Queue one attempt of step s (element idx of a map): a message of its own,
-- or, on the lane's queue, an entry the lane hands out. A step with a time
-- limit always gets its own message: Celery limits a whole task.
local function enqueue(i, s, idx)
  if lane and i.queue == lane and not i.time_limited then
    pooled[#pooled + 1] = idx and (s .. '|' .. idx) or s
  else
    push(list_of(i), message(s, idx))
  end
end

-- Admission (submit.lua): a run is in its workflow's backlog, and its
-- fairness key's, from submit until its first attempt starts, it first waits
-- for a signal, or it ends; RF.queued says it still is.
local function leave_backlog()
  if hget(RF.queued) ~= '1' then return end
  hset(RF.queued, '')
  local wf = string.match(hget(RF.workflow), '^(.*):%d+$')
  redis.call('ZREM', K.backlog(wf), RUN)
  local fk = hget(RF.fairness_key)
  if fk and fk ~= '' then redis.call('ZREM', K.key_backlog(wf, fk), RUN) end
end

-- Per-key concurrency (submit.lua): a run of a concurrency key holds one of
-- its slots from its start to its end; runs beyond the limit wait PENDING in
-- K.run_waiting, holding no worker. A run that ends gives its slot to the
-- oldest waiting run, at once and in order, and promote.lua starts that run
-- (a K.delayed entry of kind 'start', due now). The slot is the run's, not a
-- worker's: a worker lost mid-step leaves the run alive, and its lease brings
-- the step back.
local function leave_slot()
  local ck = hget(RF.concurrency_key)
  if not ck or ck == '' then return end
  local ref = hget(RF.workflow)
  local slots, waiting = K.run_slots(ref, ck), K.run_waiting(ref, ck)
  if redis.call('ZREM', slots, RUN) == 0 then
    redis.call('LREM', waiting, 1, RUN)
    return
  end
  local nxt = redis.call('LPOP', waiting)
  if nxt then
    redis.call('ZADD', slots, NOW, nxt)
    local entry = cjson.encode({r = nxt, s = '', i = '', q = '', m = '', k = 'start'})
    redis.call('ZADD', K.delayed, NOW, entry)
  end
end

local function wait_for_signal(s, i)
  leave_backlog()
  move_step(s, 'WAITING', {signal = i.signal})
  if i.wait_timeout then redis.call('ZADD', K.timeouts, NOW + i.wait_timeout, RUN .. '|' .. s) end
end

-- Make step s ready: queue it (once, or once per element for a map), or
-- start waiting for its signal. Returns true when s completed on the spot
-- (a map over an empty list), so the caller settles its dependants too.
local function dispatch(s)
  local i = info(s)
  hset(s .. SF.queued_at, NOWS)
  if i.gated then
    -- Gated by a `when` predicate: the step stays PENDING until a worker has
    -- evaluated it (claim opens the gate, the skip script closes it).
    hset(s .. SF.gated, '1')
    push(list_of(i), message(s, nil))
    return false
  end
  if i.signal then
    wait_for_signal(s, i)
    return false
  end
  if i.sleep or i['until'] then
    start_sleep(s, i)
    return false
  end
  if not i.map then
    move_step(s, 'QUEUED')
    enqueue(i, s, nil)
    return false
  end
  local n = num(i.map .. SF.elements)
  hset(s .. SF.elements, n)
  hset(s .. SF.elements_left, n)
  move_step(s, 'QUEUED', {elements = n})
  if n > 0 then
    for k = 0, n - 1 do enqueue(i, s, k) end
    return false
  end
  move_step(s, 'RUNNING')
  move_step(s, 'SUCCEEDED', {elements = 0})
  hset(s .. SF.output, '[]')
  hset(s .. SF.started_at, NOWS)
  hset(s .. SF.finished_at, NOWS)
  return true
end
