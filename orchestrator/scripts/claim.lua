--! requires: claiming, dispatch, fair, finish, replies
-- A worker is about to run a step (or one element of a map step): record the
-- attempt and hand back what the step needs, or say why it must not run
-- (ClaimArgs). A step already running is never taken over here: a lost
-- attempt is found by its expired lease (sweep), which counts it.
-- Replies 'run' | 'gate' {attempt inputs (replies.lua)}; 'wait' {why, seconds}
-- (requeued for later, holding no worker); 'waiting' {step}; 'skip' | 'stop'
-- {state}; 'gone'.
local kind, payload = claim_step(A.step, A.index, A.token, A.worker, tonumber(A.lease),
  A.gate_open == '1')
-- The message has just left its list: the list may take one held back for fairness.
if kind ~= 'gone' then
  use_plan(hget(RF.workflow))
  local list = list_of(info(A.step))
  if holding(list) then release(list) end
end
commit()
return reply(kind, payload)
