-- An operator retries a compensation that failed for good (`orch compensate
-- RUN`). The run is reopened through the operator-only table (T.reopen_run:
-- COMPENSATION_FAILED -> COMPENSATING, or CANCELLED -> CANCELLING for a
-- cancel's compensation), the step whose compensation failed gets a fresh set
-- of attempts, and the saga carries on from it: the steps completed before it
-- are undone after it, latest first, and the run ends as any saga does.
-- Replies {'gone'}, {'state', run state} (nothing to retry) or {'ok', step}.
load({'state', 'wf', 'cause', 'key', 'created_at'})
local rs = run_state()
if not rs then return {'gone'} end
use_plan(hget('wf'))
local fields = {}
for k, s in ipairs(meta().compensable) do fields[k] = s .. '.state' end
load(fields)
local failed
for _, s in ipairs(meta().compensable) do
  if step_state(s) == 'COMPENSATION_FAILED' then failed = s end
end
if not failed or not T.reopen_run[rs] then return {'state', rs} end
local to = next(T.reopen_run[rs])
hset('state', to)
event({from = rs, to = to, reopened = 'compensate'})
local again = next(T.reopen_step.COMPENSATION_FAILED)
hset(failed .. '.state', again)
event({step = failed, from = 'COMPENSATION_FAILED', to = again, reopened = 'compensate'})
hset(failed .. '.catt', 0)
local cause = hget('cause') or ''
redis.call('HDEL', RK, 'finished_at', 'cause')
if cause ~= '' then hset('error', cause) else redis.call('HDEL', RK, 'error') end
-- A finished run's keys were set to expire; an open run keeps its keys.
for _, k in ipairs(lasting_keys()) do redis.call('PERSIST', k) end
redis.call('ZADD', P .. 'runs', tonumber(hget('created_at')) or NOW, RUN)
queue_compensation(failed)
flush()
return {'ok', failed}
