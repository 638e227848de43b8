-- A worker is about to run a step (or one element of a map step): record the
-- attempt and hand back what the step needs, or say why it must not run.
-- ARGV[5] step, ARGV[6] element index or '', ARGV[7] attempt token, ARGV[8] worker.
local s, idx, token, worker = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
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
  if st == 'RUNNING' then
    -- Redelivered while recorded as running: the earlier attempt's worker was
    -- lost, or this is a duplicate. Take over; the token fences the old one.
    move_step(s, 'RETRYING', {attempt = att - 1, reason = 'redelivered'})
    move_step(s, 'QUEUED')
  elseif st ~= 'QUEUED' then
    return {'skip', st}
  end
  move_step(s, 'RUNNING', {attempt = att, worker = worker})
  hset(s .. '.tok', token)
  hset(s .. '.s', NOWS)
else
  local PT = RK .. ':parts:' .. s
  if st ~= 'QUEUED' and st ~= 'RUNNING' then return {'skip', st} end
  if redis.call('HEXISTS', PT, 'o' .. idx) == 1 then return {'skip', 'SUCCEEDED'} end
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
