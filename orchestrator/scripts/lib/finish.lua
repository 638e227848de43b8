--! requires: run, dispatch, score
--! cold: forget_end, result_json, among, record_coverage, finish_run, lasting_keys
-- Ending a run, and committing a script's writes. finish_run moves the run to
-- its terminal state (recording the result, the error and the edges taken for
-- branch coverage); commit writes the batch and, for a run that ended, sets
-- its lasting keys to expire, drops what only a live run needs and tells the
-- waiters on K.done_channel.
local ended = nil

local function ended_state() return ended end
-- The script goes on with another run (children.lua): its end is its own.
local function forget_end() ended = nil end

local function result_json()
  local finals = meta().finals
  local fields = {}
  for k, f in ipairs(finals) do fields[k] = f .. SF.output end
  load(fields)
  if #finals == 1 then return hget(finals[1] .. SF.output) or 'null' end
  local parts = {}
  for k, f in ipairs(finals) do
    parts[k] = '"' .. f .. '":' .. (hget(f .. SF.output) or 'null')
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Branch coverage: an edge u -> v is taken when v ran after u succeeded. The
-- taken edges go into the version's all-time set (K.edges) and, as a hex bit
-- mask over the plan's edge list, into the scorecard's end-of-run counter.
local RAN = '|RUNNING|RETRYING|SUCCEEDED|FAILED|COMPENSATING|COMPENSATED|COMPENSATION_FAILED|'
local DONE = '|SUCCEEDED|COMPENSATING|COMPENSATED|COMPENSATION_FAILED|'
local function among(states, state) return string.find(states, '|' .. state .. '|', 1, true) end
local function record_coverage()
  local edges = meta().edges
  if #edges == 0 then return '' end
  local fields = {}
  for k, s in ipairs(meta().order) do fields[k] = s .. SF.state end
  load(fields)
  local taken, nibbles, nibble = {}, {}, 0
  for k, e in ipairs(edges) do
    if among(DONE, step_state(e[1])) and among(RAN, step_state(e[2])) then
      taken[#taken + 1] = e[1] .. '>' .. e[2]
      nibble = nibble + 2 ^ ((k - 1) % 4)
    end
    if k % 4 == 0 or k == #edges then
      nibbles[#nibbles + 1] = string.format('%x', nibble)
      nibble = 0
    end
  end
  if #taken > 0 then redis.call('SADD', K.edges(hget(RF.workflow)), unpack(taken)) end
  return table.concat(nibbles)
end

local function finish_run(to, err)
  if not move_run(to, err and {error = err} or nil) then return end
  load({RF.undid, RF.notify, RF.queued, RF.fairness_key, RF.concurrency_key, RF.deadline_at,
    RF.key})
  -- A child run tells its parent step it ended: the step's message, which a
  -- worker claims to record the child's outcome (children.lua).
  local notify = hget(RF.notify)
  if notify and notify ~= '' then push(hget(RF.notify_queue), notify) end
  leave_backlog()
  leave_slot()
  local mask = record_coverage()
  score_count('end:' .. to .. ':' .. (hget(RF.undid) and '1' or '0') .. ':' .. mask)
  redis.call('ZADD', K.score_active, NOW, hget(RF.workflow))
  hset(RF.finished_at, NOWS)
  if to == 'SUCCEEDED' then hset(RF.result, result_json()) end
  if err then hset(RF.error, err) end
  ended = to
end

-- The keys a finished run keeps until its TTL runs out (a reopened run keeps them again).
local function lasting_keys()
  local ks = {RK, EK}
  for _, s in ipairs(meta().mapped_over) do ks[#ks + 1] = K.items(RUN, s) end
  local key = hget(RF.key)
  if key and key ~= '' then ks[#ks + 1] = key end
  return ks
end

local function commit()
  write_run()
  flush_pushes()
  if not ended then return end
  local ttl = tonumber(A.ttl)
  for _, k in ipairs(lasting_keys()) do redis.call('EXPIRE', k, ttl) end
  for _, s in ipairs(meta().maps) do redis.call('DEL', K.parts(RUN, s)) end
  for _, q in ipairs(meta().lists or {}) do redis.call('DEL', K.ready(RUN, q)) end
  redis.call('ZREMRANGEBYSCORE', K.runs, '-inf', NOW - ttl)
  if hget(RF.deadline_at) then redis.call('ZREM', K.deadlines, RUN) end
  redis.call('PUBLISH', K.done_channel(RUN), ended)
end
