--! requires: base
--! cold: current_run, run_key, switch_plan, meta, illegal, terminal, reopening, move_run
-- One run's hash and event history, batched: reads are cached, writes are
-- collected and written once (one HSET, one RPUSH) by write_run, however
-- many transitions a script makes. Every state change goes through
-- move_step / move_run, which check the transition table T (rendered from
-- states.py) and count refused moves in K.illegal.
--
-- The transition tables come rendered as strings of '|kind:FROM>TO|' entries
-- (MOVES: the engine's, REOPENS: the operator's; see states.py lua_table).
--
-- Engine scripts open the run named by A.run; promote.lua opens each run it
-- touches in turn.
local RUN, RK, EK
local sets, seen, events, told = {}, {}, {}, {}
-- What the caller wants back (inputs.py Observe): '' nothing, 'events' the
-- decisions a hook can hear of (tells), 'all' every one.
local OBSERVE = (A.observe or '') ~= ''
local TELL_ALL = A.observe == 'all'
local infos = (A.infos or '') ~= '' and cjson.decode(A.infos) or {}
local PK, META

local function open_run(id)
  RUN, RK, EK = id, K.run(id), K.events(id)
  sets, seen, events, told = {}, {}, {}, {}
end
if A.run then open_run(A.run) end
-- The run being created (submit.lua) has no hash yet: its fields read as
-- absent without asking Redis.
local function fresh_run()
  seen = setmetatable({}, {__index = function() return false end})
end
local function current_run() return RUN end
local function run_key() return RK end

-- The member naming one attempt in K.leases (see keys.py).
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

-- The plan of the run's workflow version: its meta (order, roots, finals, ...)
-- and one record per step (fields.py PLAN_RECORD). Callers pass the records
-- they hold in A.infos, which spares a read of the plan hash per step.
-- A script that visits runs of several versions (reconcile.lua) forgets the
-- records of the last version when it turns to another.
local templates = {}
local function use_plan(ref)
  local key = K.plan(ref)
  if key ~= PK then
    if PK then infos, META = {}, nil end
    PK, templates = key, {}
  end
end
-- Another run's plan in the same script (a child run's): forget the records held.
local function switch_plan(ref)
  PK, META, infos, templates = K.plan(ref), nil, {}, {}
end
-- Open the plan of ref with its meta read at once (submit.lua, which needs
-- it anyway): false when ref has no plan, in the same one read.
local function read_plan(ref)
  use_plan(ref)
  local raw = redis.call('HGET', PK, LF.meta)
  if not raw then return false end
  META = cjson.decode(raw)
  return true
end
-- A record the caller passed (nil when it passed none for s): no read.
local function known_info(s) return infos[s] end
local function meta()
  if not META then META = cjson.decode(redis.call('HGET', PK, LF.meta)) end
  return META
end
local function info(s)
  local i = infos[s]
  if not i then i = cjson.decode(redis.call('HGET', PK, s)); infos[s] = i end
  return i
end

-- A step's message template (LF.message) or its compensation's (LF.undo_message).
-- They live beside the records, not in them: only a step that gets a Celery
-- message of its own needs one, and most steps are claimed by a lane instead.
local function template(s, which)
  local f = s .. which
  local t = templates[f]
  if not t then t = redis.call('HGET', PK, f); templates[f] = t end
  return t
end

-- Read the records of steps about to be dispatched, and their templates of
-- kind which, in one HMGET rather than two reads per step (submit.lua: the
-- run's roots). A step with no such template (one that waits) caches none.
local function preload(steps, which)
  local fields, records = {}, {}
  for _, s in ipairs(steps) do
    if not infos[s] then
      fields[#fields + 1] = s
      records[#fields] = true
    end
    if not templates[s .. which] then fields[#fields + 1] = s .. which end
  end
  if #fields == 0 then return end
  local vals = redis.call('HMGET', PK, unpack(fields))
  for k, f in ipairs(fields) do
    local v = vals[k]
    if v and records[k] then
      infos[f] = cjson.decode(v)
    elseif v then
      templates[f] = v
    end
  end
end

local function illegal(kind, from, to)
  redis.call('HINCRBY', K.illegal, kind .. ':' .. from .. '>' .. to, 1)
  return false
end
local function step_state(s) return hget(s .. SF.state) or 'PENDING' end
local function run_state() return hget(RF.state) end

local function index_of(idx)
  if idx == nil or idx == '' then return nil end
  return tonumber(idx)
end

-- Whether `kind` ('run' or 'step') may move from -> to in `moves` (MOVES or REOPENS).
local function allowed(moves, kind, from, to)
  return string.find(moves, '|' .. kind .. ':' .. from .. '>' .. to .. '|', 1, true) ~= nil
end
-- A state the run never leaves: no move of the engine's starts from it.
local function terminal(run_state_) return not string.find(MOVES, '|run:' .. run_state_ .. '>', 1, true) end
-- Whether a hook can hear of decision ev (reporting.py words it as an event):
-- every decision but a step's plain move (one neither into nor out of a wait,
-- nor a retry) and a run's move to a state it will leave again.
local function tells(ev)
  if ev.to == nil then return true end
  if ev.step == nil then return terminal(ev.to) end
  return ev.from == 'WAITING' or ev.to == 'WAITING' or ev.delay ~= nil
end
-- Append a decision to the run's history (and to this call's reply, as the caller asked).
local function event(ev)
  ev.t = NOW
  local line = cjson.encode(ev)
  events[#events + 1] = line
  if OBSERVE and (TELL_ALL or tells(ev)) then told[#told + 1] = line end
end
-- This call's decisions for the reply: a JSON list, or '' when it has none to tell.
local function notes()
  if #told == 0 then return '' end
  return '[' .. table.concat(told, ',') .. ']'
end

-- Where the operator's table reopens `from` to, or nil.
local function reopening(kind, from)
  return string.match(REOPENS, '|' .. kind .. ':' .. from .. '>([%u_]+)|')
end

local function move_step(s, to, extra, moves)
  local from = step_state(s)
  if not allowed(moves or MOVES, 'step', from, to) then return illegal('step', from, to) end
  hset(s .. SF.state, to)
  local ev = extra or {}
  ev.step, ev.from, ev.to = s, from, to
  -- How long a wait lasted, for the hooks' wait event (it began when dispatched).
  if from == 'WAITING' then ev.waited = NOW - tonumber(hget(s .. SF.queued_at) or NOW) end
  event(ev)
  return true
end
local function move_run(to, extra, moves)
  local from = run_state()
  if from and not allowed(moves or MOVES, 'run', from, to) then return illegal('run', from, to) end
  hset(RF.state, to)
  -- The reconciler looks through the runs not yet ended (reconcile.lua): a run
  -- joins K.live when it starts (or a final state reopens) and leaves when it ends.
  if terminal(to) then
    redis.call('SREM', K.live, RUN)
  elseif not from or terminal(from) then
    redis.call('SADD', K.live, RUN)
  end
  local ev = extra or {}
  ev.from, ev.to = from or cjson.null, to
  event(ev)
  return true
end

-- A field set back to the value it was read with (RF.inflight, down and up
-- again as a lane moves on) is not written: each field written is a scan of
-- the run hash. (So a script that deletes a field itself, with HDEL on RK,
-- must not hset it back to the value it read: none does.)
local function unchanged(f, v)
  local was = seen[f]
  if not was then return false end
  if type(v) == 'number' then return v == math.floor(v) and was == tostring(v) end
  return was == v
end
local function write_run()
  local args = {}
  for f, v in pairs(sets) do
    if not unchanged(f, v) then args[#args + 1] = f; args[#args + 1] = v end
  end
  if #args > 0 then redis.call('HSET', RK, unpack(args)) end
  for k = 1, #events, 500 do
    redis.call('RPUSH', EK, unpack(events, k, math.min(k + 499, #events)))
  end
end
