-- A worker is about to run a step's compensation. ARGV[5] step, ARGV[6] token,
-- ARGV[7] worker, ARGV[8] lease seconds. Replies like claim.lua, with mode
-- 'compensate' and the step's own output after its upstreams'.
local s, token, worker, lease = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
load({'state', 'wf', 'input', s .. '.state', s .. '.ctok', s .. '.catt', s .. '.out'})
local rs = run_state()
if not rs then return {'gone'} end
if rs ~= 'COMPENSATING' and rs ~= 'CANCELLING' then return {'stop', rs} end
use_plan(hget('wf'))
if step_state(s) ~= 'COMPENSATING' then return {'skip', step_state(s)} end
local old = hget(s .. '.ctok')
if old and redis.call('ZSCORE', LEASES, lease_member(s, '-1', old)) then return {'skip', 'RUNNING'} end
local att = num(s .. '.catt') + 1
hset(s .. '.catt', att)
hset(s .. '.ctok', token)
redis.call('ZADD', LEASES, NOW + lease, lease_member(s, '-1', token))
event({step = s, compensation = 'started', attempt = att, worker = worker})
local i = info(s)
local outs = {}
for k, u in ipairs(i.up) do outs[k] = u .. '.out' end
load(outs)
local reply = {'run', tostring(att), hget('input'), 'compensate'}
for _, u in ipairs(i.up) do
  reply[#reply + 1] = u
  reply[#reply + 1] = hget(u .. '.out')
end
reply[#reply + 1] = s
reply[#reply + 1] = hget(s .. '.out')
flush()
return reply
