-- A worker is about to run a step (or one element of a map step): record the
-- attempt and hand back what the step needs, or say why it must not run.
-- ARGV[5] step, ARGV[6] element index or '', ARGV[7] attempt token, ARGV[8] worker,
-- ARGV[9] lease seconds. A step already running is never taken over here: a
-- lost attempt is found by its expired lease (sweep), which counts it.
local s, idx, token, worker, lease = ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local want = {'state', 'wf', 'input', s .. '.state', s .. '.att'}
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
local att = num(s .. '.att') + 1
if idx == '' then
  if st ~= 'QUEUED' then return {'skip', st} end
  move_step(s, 'RUNNING', {attempt = att, worker = worker})
  hset(s .. '.tok', token)
  hset(s .. '.s', NOWS)
else
  local PT = RK .. ':parts:' .. s
  if st ~= 'QUEUED' and st ~= 'RUNNING' then return {'skip', st} end
  local part = redis.call('HMGET', PT, 't' .. idx, 'o' .. idx)
  if part[2] then return {'skip', 'SUCCEEDED'} end
  if part[1] and redis.call('ZSCORE', LEASES, lease_member(s, idx, part[1])) then
    return {'skip', 'RUNNING'}
  end
  if st == 'QUEUED' then
    move_step(s, 'RUNNING', {worker = worker})
    hset(s .. '.s', NOWS)
  end
  redis.call('HSET', PT, 't' .. idx, token)
  hset(s .. '.att', att)
  att = redis.call('HINCRBY', PT, 'a' .. idx, 1)
end
if idx == '' then hset(s .. '.att', att) end
hset(s .. '.by', worker)
redis.call('ZADD', LEASES, NOW + lease, lease_member(s, idx, token))
local outs = {}
for k, u in ipairs(i.up) do outs[k] = u .. '.out' end
load(outs)
local reply = {'run', tostring(att), hget('input')}
for _, u in ipairs(i.up) do
  reply[#reply + 1] = u
  if idx ~= '' and u == i.m then
    reply[#reply + 1] = redis.call('HGET', RK .. ':items:' .. u, idx)
  else
    reply[#reply + 1] = hget(u .. '.out')
  end
end
flush()
return reply
