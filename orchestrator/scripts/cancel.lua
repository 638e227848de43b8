-- Cancel a run: it stops starting steps (queued ones are refused when a worker
-- picks them up), waits for running ones, compensates the completed ones and
-- ends CANCELLED. Idempotent; a cancel during compensation joins it rather
-- than restarting it. ARGV[5] reason.
load({'state', 'wf', 'inflight', 'undoing', 'done'})
local rs = run_state()
if not rs then return {'gone'} end
if next(T.run[rs]) == nil then return {'final', rs} end
if rs == 'CANCELLING' then return {'already', rs} end
use_plan(hget('wf'))
move_run('CANCELLING', {reason = ARGV[5]})
wind_down()
flush()
return {'ok', ended or 'CANCELLING'}
