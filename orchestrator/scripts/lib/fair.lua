--! requires: run
--! cold: queue_width, queue_of, held_mark, list_depth, hold, release
-- Fairness across tenants: weighted round-robin of runnable work of different
-- fairness keys, per kombu list (so per queue and priority level), shared by
-- every worker because it lives in Redis.
--
-- A kombu list is FIFO, so fairness is decided before a message enters it:
-- while the list holds fewer messages than its depth (half the processes
-- consuming its queue, by their capacity beats, and at least one), a message
-- goes straight in; beyond that, messages
-- of runs with a fairness key (and, once some are held back, every message of
-- the list, under the key '') are held back per key, and released one at a
-- time by stride scheduling: the key with the lowest pass goes next, and its
-- pass grows by 1 / weight. A key that had nothing held is a newcomer: its
-- first message goes ahead of the few already in the list (jump, once the
-- list holds work back), and the key starts two of its own strides
-- (NEWCOMER_STRIDES) before the pass of the last release. A tenant that was
-- idle then starts its first run as soon as a process is free, and three more
-- before the busy key's next turn (one stride after the last release), like a
-- sleeper's bonus in Linux's CFS; but it banks no more credit than that,
-- however long it was idle. Without it, a tenant arriving behind a burst would
-- wait behind the messages already in the list, then twice its idle delay.
--
-- Releases happen when a message is parked, when a worker claims a message of
-- the list (claim.lua: it has just left the list) and from every worker's
-- promoter (promote.lua), so a worker killed between taking a message and
-- claiming it strands nothing. Everything is in the script that decides.
local fair_seen, widths = {}, {}

-- Live processes consuming queue q (capacity beats), or nil when none beats;
-- read once per call.
local function queue_width(q)
  local w = widths[q]
  if w ~= nil then return w or nil end
  local beats = redis.call('ZRANGEBYSCORE', K.capacity(q), NOW, '+inf')
  local total = false
  if #beats > 0 then
    total = 0
    for _, b in ipairs(beats) do total = total + (tonumber(string.match(b, '|(%d+)$')) or 1) end
  end
  widths[q] = total
  return total or nil
end

-- The queue a kombu list belongs to (the list without its priority suffix).
local function queue_of(list) return string.match(list, '^(.-)\6\22%d$') or list end
-- A list holding work back is noted in its queue's K.levels as 'h' .. its
-- priority, so a lane between steps learns everything in one SMEMBERS
-- (claiming.lua outranked).
local function held_mark(list)
  return 'h' .. (9 - tonumber(string.match(list, '\6\22(%d)$') or '0'))
end

-- How many messages list may hold while others wait: a message released to
-- it waits behind these, so fewer is fairer; each claim releases the next, so
-- half the consumers is enough to keep them all busy. Nil when none beats.
local function list_depth(list)
  local width = queue_width(queue_of(list))
  return width and math.max(1, math.floor(width / 2)) or nil
end

-- Whether list has messages held back (memoised per call; changes below keep it true).
local function holding(list)
  local h = fair_seen[list]
  if h == nil then
    h = redis.call('SISMEMBER', K.fair_lists, list) == 1
    fair_seen[list] = h
  end
  return h
end

-- Whether a message of the current run for list must be held back rather
-- than pushed; queued is what this call already pushes to the list.
local function must_hold(list, queued)
  if holding(list) then return true end
  local fk = hget(RF.fairness_key)
  if not fk or fk == '' then return false end
  local most = list_depth(list)
  if not most then return false end
  return redis.call('LLEN', list) + queued >= most
end

-- Strides (1 / weight) of credit a key gets as it starts waiting: it starts
-- that far before the pass of the last release.
local NEWCOMER_STRIDES = 2

-- A key that starts waiting on a list already holding work back sends its
-- first message ahead of the few already in the list (at most its depth):
-- had the key been waiting when those were released, it would have gone
-- first. It goes at the end consumers take from (kombu pops from the right),
-- and only while the list holds no more than its depth, so at most one
-- message is ever above it.
local function jump(list, msg)
  if not holding(list) or redis.call('LLEN', list) > (list_depth(list) or 1) then
    return false
  end
  redis.call('RPUSH', list, msg)
  return true
end

local function hold(list, msg)
  local fk = hget(RF.fairness_key) or ''
  if not redis.call('ZSCORE', K.fair_keys(list), fk) then
    if jump(list, msg) then msg = nil end
    local clock = tonumber(redis.call('GET', K.fair_clock(list)) or '0')
    local weight = tonumber(hget(RF.fairness_weight) or '1')
    redis.call('ZADD', K.fair_keys(list), clock - NEWCOMER_STRIDES / weight, fk)
    redis.call('HSET', K.fair_weights(list), fk, weight)
  end
  if msg then redis.call('RPUSH', K.fair_held(list, fk), msg) end
  if not fair_seen[list] then
    redis.call('SADD', K.fair_lists, list)
    redis.call('SADD', K.levels(queue_of(list)), held_mark(list))
    fair_seen[list] = true
  end
end

-- Release held messages of list into it, in weighted round-robin, until it
-- holds as many as its depth (list_depth).
local function release(list)
  local room = (list_depth(list) or 1) - redis.call('LLEN', list)
  while room > 0 do
    local top = redis.call('ZRANGE', K.fair_keys(list), 0, 0, 'WITHSCORES')
    if #top == 0 then
      redis.call('SREM', K.fair_lists, list)
      redis.call('SREM', K.levels(queue_of(list)), held_mark(list))
      redis.call('DEL', K.fair_clock(list), K.fair_weights(list))
      fair_seen[list] = false
      return
    end
    local fk, pass = top[1], tonumber(top[2])
    local held = K.fair_held(list, fk)
    local msg = redis.call('LPOP', held)
    if msg then
      redis.call('LPUSH', list, msg)
      room = room - 1
    end
    -- The clock only goes forward: a key released on its credit (above) is
    -- behind it, and must not pull the next newcomer's start further back.
    if pass > tonumber(redis.call('GET', K.fair_clock(list)) or '0') then
      redis.call('SET', K.fair_clock(list), pass)
    end
    if redis.call('LLEN', held) == 0 then
      redis.call('ZREM', K.fair_keys(list), fk)
      redis.call('HDEL', K.fair_weights(list), fk)
    else
      local w = tonumber(redis.call('HGET', K.fair_weights(list), fk) or '1')
      redis.call('ZADD', K.fair_keys(list), pass + 1 / w, fk)
    end
  end
end
