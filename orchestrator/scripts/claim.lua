-- A worker is about to run a step (or one element of a map step): record the
-- attempt and hand back what the step needs, or say why it must not run.
-- ARGV[5] step, ARGV[6] element index or '', ARGV[7] attempt token, ARGV[8] worker,
-- ARGV[9] lease seconds, ARGV[10] 'open' once the worker found the step's
-- `when` predicate true. A step already running is never taken over here: a
-- lost attempt is found by its expired lease (sweep), which counts it.
-- Replies: {'run', attempt, input, mode, upstream, output, ...} with mode 'task',
-- 'fallback' or 'open' (breaker open, no fallback: fail fast), or 'gate' (the
-- inputs for the `when` predicate; nothing was recorded); {'wait', why,
-- seconds} (requeued for later, holding no worker); {'skip'|'stop'|'gone', ...}.
local s, idx, token, worker, lease = ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local gate = ARGV[10]
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
    flush()
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
      flush()
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
local r = reply(mode)
flush()
return r
