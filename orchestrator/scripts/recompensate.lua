--! requires: run, saga, finish, replies
-- An operator retries a compensation that failed for good (`orch compensate
-- RUN`, RecompensateArgs). The run is reopened through the operator-only
-- moves (REOPENS: COMPENSATION_FAILED -> COMPENSATING, or CANCELLED ->
-- CANCELLING for a cancel's compensation, and the step's), the step whose
-- compensation failed gets a fresh set of attempts, and the saga carries on
-- from it: the steps completed before it are undone after it, latest first,
-- and the run ends as any saga does.
-- Replies 'ok' {step}, 'state' {run state} (nothing to retry), 'gone'.
load({RF.state, RF.workflow, RF.cause, RF.key, RF.created_at})
local rs = run_state()
if not rs then return reply('gone') end
use_plan(hget(RF.workflow))
local fields = {}
for k, s in ipairs(meta().compensable) do fields[k] = s .. SF.state end
load(fields)
local failed
for _, s in ipairs(meta().compensable) do
  if step_state(s) == 'COMPENSATION_FAILED' then failed = s end
end
local to = reopening('run', rs)
if not failed or not to then return reply('state', {rs}) end
move_run(to, {reopened = 'compensate'}, REOPENS)
move_step(failed, reopening('step', 'COMPENSATION_FAILED'), {reopened = 'compensate'}, REOPENS)
hset(failed .. SF.undo_attempts, 0)
local cause = hget(RF.cause) or ''
redis.call('HDEL', RK, RF.finished_at, RF.cause)
if cause ~= '' then hset(RF.error, cause) else redis.call('HDEL', RK, RF.error) end
-- A finished run's keys were set to expire; an open run keeps its keys.
for _, k in ipairs(lasting_keys()) do redis.call('PERSIST', k) end
redis.call('ZADD', K.runs, tonumber(hget(RF.created_at)) or NOW, RUN)
queue_compensation(failed)
commit()
return reply('ok', {failed})
