--! requires: run, sleeps
-- Dispatch: turning a step that became ready into work. Messages are built
-- from the step's template (messages.py) by one function, render; they are
-- collected per kombu list and pushed once by flush_pushes. A step that must
-- wait (a retry's backoff, a dependency limit, a compensation's retry) goes
-- into K.delayed through one builder, delay, whose entries promote.lua reads:
--   {r = run, s = step, i = element index or '', q = kombu list, m = message,
--    k = 'retry' | 'admit' | 'undo'}
-- When the caller is a runner lane (claiming.lua), steps ready on its queue
-- are pooled instead of getting a message each, and the lane hands them out.
local pushes, seq = {}, 0
local lane, pooled = nil, {}

local function render(template, idx, tag)
  seq = seq + 1
  local m = string.gsub(template, '@RUN@', RUN)
  if idx ~= nil and idx ~= '' then m = string.gsub(m, '@IDX@', tostring(idx)) end
  return (string.gsub(m, '@TAG@', RUN .. '.' .. NOWS .. '.' .. tag .. seq))
end
local function message(s, idx) return render(template(s, LF.message), idx, '') end
local function undo_message(s) return render(template(s, LF.undo_message), nil, 'u') end

local function push(list, msg)
  local q = pushes[list]
  if not q then q = {}; pushes[list] = q end
  q[#q + 1] = msg
end
local function flush_pushes()
  for list, msgs in pairs(pushes) do
    for k = 1, #msgs, 500 do
      redis.call('LPUSH', list, unpack(msgs, k, math.min(k + 499, #msgs)))
    end
  end
  pushes = {}
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
    push(i.queue, message(s, idx))
  end
end

local function wait_for_signal(s, i)
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
    push(i.queue, message(s, nil))
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
