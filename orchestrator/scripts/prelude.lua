-- Shared prelude of every engine script. The transition table T is prepended
-- by Python from orchestrator/states.py, so it has one source of truth.
--
-- Conventions: KEYS[1] run hash, KEYS[2] its event list; ARGV[1] key prefix,
-- ARGV[2] run id, ARGV[3] TTL of a finished run in seconds, ARGV[4] the plan
-- records the caller already holds (a JSON object step -> record, or ''),
-- which spares a read of the plan hash per step touched. Writes to the run
-- hash and events are batched and flushed once at the end, so a script does
-- one HSET and one RPUSH however many transitions it makes.
local P, RUN, TTL = ARGV[1], ARGV[2], tonumber(ARGV[3])
local RK, EK = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local NOW = tonumber(t[1]) + tonumber(t[2]) / 1000000
local NOWS = string.format('%.6f', NOW)
local sets, seen, events, pushes = {}, {}, {}, {}
local infos = ARGV[4] ~= '' and cjson.decode(ARGV[4]) or {}
local PK, META, ended, seq = nil, nil, false, 0
-- The worker that called, when it runs more of the run's steps itself (see
-- claiming.lua), and the entries it is to hand out.
local RUNNER, pooled = nil, {}
local LEASES = P .. 'leases'

-- The member naming one attempt in the lease set (see keys.py).
local function lease_member(s, idx, tok) return RUN .. '|' .. s .. '|' .. idx .. '|' .. tok end

local function hget(f)
  local v = sets[f]
  if v ~= nil then return v end
  v = seen[f]
  if v == nil then v = redis.call('HGET', RK, f); seen[f] = v end
  return v
end
local function hset(f, v) sets[f] = v end
-- Read many fields in one HMGET, so later hget() calls cost nothing.
local function load(fields)
  local want = {}
  for _, f in ipairs(fields) do
    if sets[f] == nil and seen[f] == nil then want[#want + 1] = f end
  end
  if #want == 0 then return end
  local vals = redis.call('HMGET', RK, unpack(want))
  for k, f in ipairs(want) do seen[f] = vals[k] end
end
local function num(f) return tonumber(hget(f) or '0') end

local function use_plan(ref) PK = P .. 'plan:' .. ref end
local function meta()
  if not META then META = cjson.decode(redis.call('HGET', PK, '__meta__')) end
  return META
end
local function info(s)
  local i = infos[s]
  if not i then i = cjson.decode(redis.call('HGET', PK, s)); infos[s] = i end
  return i
end

local function event(ev)
  ev.t = NOW
  events[#events + 1] = cjson.encode(ev)
end
local function illegal(kind, from, to)
  redis.call('HINCRBY', P .. 'stats:illegal', kind .. ':' .. from .. '>' .. to, 1)
  return false
end
local function step_state(s) return hget(s .. '.state') or 'PENDING' end
local function run_state() return hget('state') end

local function move_step(s, to, extra)
  local from = step_state(s)
  if not T.step[from][to] then return illegal('step', from, to) end
  hset(s .. '.state', to)
  local ev = extra or {}
  ev.step, ev.from, ev.to = s, from, to
  event(ev)
  return true
end
local function move_run(to, extra)
  local from = run_state()
  if from and not T.run[from][to] then return illegal('run', from, to) end
  hset('state', to)
  local ev = extra or {}
  ev.from, ev.to = from or cjson.null, to
  event(ev)
  return true
end

-- Queue a Celery message built from the step's template (see messages.py).
local function message(i, idx)
  seq = seq + 1
  local m = string.gsub(i.t, '@RUN@', RUN)
  if idx ~= nil then m = string.gsub(m, '@IDX@', tostring(idx)) end
  m = string.gsub(m, '@TAG@', RUN .. '.' .. NOWS .. '.' .. seq)
  return m
end
local function push(list, msg)
  local q = pushes[list]
  if not q then q = {}; pushes[list] = q end
  q[#q + 1] = msg
end

-- Queue one attempt of step s (element idx of a map): a message of its own,
-- or, on the runner's queue, an entry the runner hands out. A step with a
-- time limit always gets its own message: Celery limits a whole task.
local function enqueue(i, s, idx)
  if RUNNER and i.q == RUNNER.q and not i.tl then
    pooled[#pooled + 1] = idx and (s .. '|' .. idx) or s
  else
    push(i.q, message(i, idx))
  end
end

local function result_json()
  local finals = meta().finals
  local fields = {}
  for k, f in ipairs(finals) do fields[k] = f .. '.out' end
  load(fields)
  if #finals == 1 then return hget(finals[1] .. '.out') or 'null' end
  local parts = {}
  for k, f in ipairs(finals) do
    parts[k] = '"' .. f .. '":' .. (hget(f .. '.out') or 'null')
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- Branch coverage: an edge u -> v is taken when v ran after u succeeded.
local RAN = {RUNNING = true, RETRYING = true, SUCCEEDED = true, FAILED = true,
  COMPENSATING = true, COMPENSATED = true, COMPENSATION_FAILED = true}
local DONE = {SUCCEEDED = true, COMPENSATING = true, COMPENSATED = true, COMPENSATION_FAILED = true}
local function record_coverage()
  local edges = meta().edges
  if #edges == 0 then return end
  local fields = {}
  for k, s in ipairs(meta().order) do fields[k] = s .. '.state' end
  load(fields)
  local taken = {}
  for _, e in ipairs(edges) do
    if DONE[step_state(e[1])] and RAN[step_state(e[2])] then
      taken[#taken + 1] = e[1] .. '>' .. e[2]
    end
  end
  if #taken > 0 then redis.call('SADD', P .. 'stats:' .. hget('wf') .. ':edges', unpack(taken)) end
end

local function finish_run(to, err)
  if not move_run(to, err and {error = err} or nil) then return end
  record_coverage()
  hset('finished_at', NOWS)
  if to == 'SUCCEEDED' then hset('result', result_json()) end
  if err then hset('error', err) end
  ended = to
end

local function wait_for_signal(s, i)
  move_step(s, 'WAITING', {signal = i.w})
  if i.to then redis.call('ZADD', P .. 'timeouts', NOW + i.to, RUN .. '|' .. s) end
end

-- Make step s ready: queue it (once, or once per element for a map), or
-- start waiting for its signal. Returns true when s completed on the spot
-- (a map over an empty list), so the caller settles its dependants too.
local function dispatch(s)
  local i = info(s)
  hset(s .. '.q', NOWS)
  if i.wh then
    -- Gated by a `when` predicate: the step stays PENDING until a worker has
    -- evaluated it (claim opens the gate, the skip script closes it).
    hset(s .. '.gate', '1')
    push(i.q, message(i, nil))
    return false
  end
  if i.w then
    wait_for_signal(s, i)
    return false
  end
  if not i.m then
    move_step(s, 'QUEUED')
    enqueue(i, s, nil)
    return false
  end
  local n = num(i.m .. '.n')
  hset(s .. '.n', n)
  hset(s .. '.left', n)
  move_step(s, 'QUEUED', {elements = n})
  if n > 0 then
    for k = 0, n - 1 do enqueue(i, s, k) end
    return false
  end
  move_step(s, 'RUNNING')
  move_step(s, 'SUCCEEDED', {elements = 0})
  hset(s .. '.out', '[]')
  hset(s .. '.s', NOWS)
  hset(s .. '.f', NOWS)
  return true
end

-- Step s has succeeded: count it against each dependant's join and queue the
-- dependants whose last upstream this was; end the run when nothing is left.
-- Whether a step whose upstreams are all done must be skipped: by default any
-- skipped upstream skips it; `none_failed` runs it anyway (skipped inputs are
-- null); `any_succeeded` runs it if at least one upstream succeeded.
local function must_skip(d, skipped)
  if skipped == 0 then return false end
  local tr = info(d).tr or 'all_succeeded'
  if tr == 'none_failed' then return false end
  return tr == 'all_succeeded' or skipped == #info(d).up
end

-- Step s has succeeded (or was skipped): count it against each dependant's
-- join and queue (or skip) the dependants whose last upstream this was; end
-- the run when nothing is left.
local function settle(first, first_skipped)
  local work = {{first, first_skipped}}
  while #work > 0 do
    local item = table.remove(work)
    local s, was_skipped = item[1], item[2]
    local left = num('left') - 1
    hset('left', left)
    if run_state() == 'RUNNING' then
      local downs = info(s).d
      local fields = {}
      for _, d in ipairs(downs) do
        fields[#fields + 1] = d .. '.got'
        fields[#fields + 1] = d .. '.skp'
      end
      load(fields)
      for _, d in ipairs(downs) do
        local got = num(d .. '.got') + 1
        hset(d .. '.got', got)
        local skipped = num(d .. '.skp')
        if was_skipped then skipped = skipped + 1; hset(d .. '.skp', skipped) end
        if got == #info(d).up then
          if must_skip(d, skipped) then
            move_step(d, 'SKIPPED', {reason = 'upstream skipped'})
            hset(d .. '.f', NOWS)
            work[#work + 1] = {d, true}
          elseif dispatch(d) then
            work[#work + 1] = {d, false}
          end
        end
      end
      if left == 0 then finish_run('SUCCEEDED') end
    end
  end
end

-- The keys a finished run keeps until its TTL runs out (a reopened run keeps them again).
local function lasting_keys()
  local ks = {RK, EK}
  for _, s in ipairs(meta().mapped_over) do ks[#ks + 1] = RK .. ':items:' .. s end
  local key = hget('key')
  if key and key ~= '' then ks[#ks + 1] = key end
  return ks
end

local function flush()
  local args = {}
  for f, v in pairs(sets) do args[#args + 1] = f; args[#args + 1] = v end
  if #args > 0 then redis.call('HSET', RK, unpack(args)) end
  for k = 1, #events, 500 do
    redis.call('RPUSH', EK, unpack(events, k, math.min(k + 499, #events)))
  end
  for list, msgs in pairs(pushes) do
    for k = 1, #msgs, 500 do
      redis.call('LPUSH', list, unpack(msgs, k, math.min(k + 499, #msgs)))
    end
  end
  if ended then
    for _, k in ipairs(lasting_keys()) do redis.call('EXPIRE', k, TTL) end
    for _, s in ipairs(meta().maps) do redis.call('DEL', RK .. ':parts:' .. s) end
    for _, q in ipairs(meta().lists or {}) do redis.call('DEL', RK .. ':ready:' .. q) end
    redis.call('ZREMRANGEBYSCORE', P .. 'runs', '-inf', NOW - TTL)
    redis.call('PUBLISH', P .. 'done:' .. RUN, ended)
  end
end
