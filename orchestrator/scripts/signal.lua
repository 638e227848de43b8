-- Deliver a signal: every step of the run waiting for it (WAITING, `wait_for:
-- NAME`) succeeds with the signal's data as its output, and its dependants are
-- settled. ARGV[5] signal name, ARGV[6] data (JSON).
-- Replies {'ok', ended-state, step, ...}, {'none', step, state, ...} when no
-- step waits for it now, {'stop', run-state} or {'gone'}.
local name, data = ARGV[5], ARGV[6]
load({'state', 'wf', 'left'})
local rs = run_state()
if not rs then return {'gone'} end
if rs ~= 'RUNNING' then return {'stop', rs} end
use_plan(hget('wf'))
local steps = meta().waits[name] or {}
local done, states = {}, {}
for _, s in ipairs(steps) do
  local st = step_state(s)
  if st == 'WAITING' then
    move_step(s, 'SUCCEEDED', {signal = name})
    hset(s .. '.out', data)
    hset(s .. '.f', NOWS)
    mark_done(s)
    redis.call('ZREM', P .. 'timeouts', RUN .. '|' .. s)
    settle(s, false)
    done[#done + 1] = s
  else
    states[#states + 1] = s
    states[#states + 1] = st
  end
end
flush()
if #done == 0 then
  table.insert(states, 1, 'none')
  return states
end
table.insert(done, 1, ended or '')
table.insert(done, 1, 'ok')
return done
