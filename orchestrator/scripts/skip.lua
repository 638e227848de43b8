-- A gated step whose `when` predicate was false: PENDING -> SKIPPED, and its
-- dependants are settled as after a skip. ARGV[5] step.
local s = ARGV[5]
load({'state', 'wf', 'left', s .. '.state', s .. '.gate'})
local rs = run_state()
if rs ~= 'RUNNING' then return {'stop', rs or 'gone'} end
use_plan(hget('wf'))
if step_state(s) ~= 'PENDING' or hget(s .. '.gate') ~= '1' then return {'stale', step_state(s)} end
hset(s .. '.gate', '')
move_step(s, 'SKIPPED', {reason = 'when'})
hset(s .. '.f', NOWS)
settle(s, true)
flush()
return {'ok', ended or ''}
