--! requires: run, dispatch, finish
--! cold: queue_compensation, start_next_compensation, fail_run
-- Sagas: undoing completed steps when a run fails or is cancelled.
--
-- Completed steps that declare a compensation are appended to the run's
-- RF.completed list in completion order. When the run fails (or is
-- cancelled) it waits until no attempt is in flight (RF.inflight), so that a
-- step finishing late is undone too, then compensates one step at a time,
-- latest first, each exactly once (RF.undoing marks the one in progress). A
-- compensation is claimed, leased and fenced like an attempt, with element
-- index -1; its times go to the step's undo_* fields, never its own.

local function mark_done(s)
  if info(s).compensable then hset(RF.completed, (hget(RF.completed) or '') .. s .. ',') end
end

-- Queue the compensation of step s, now COMPENSATING; it is the one in progress.
local function queue_compensation(s)
  hset(s .. SF.undo_queued_at, NOWS)
  push(list_of(info(s)), undo_message(s))
  hset(RF.undoing, s)
end

-- Queue the compensation of the latest completed step not yet undone.
local function start_next_compensation()
  local order = {}
  for s in string.gmatch(hget(RF.completed) or '', '([^,]+)') do order[#order + 1] = s end
  for k = #order, 1, -1 do
    local s = order[k]
    if step_state(s) == 'SUCCEEDED' then
      move_step(s, 'COMPENSATING')
      queue_compensation(s)
      hset(RF.undid, '1')
      return true
    end
  end
  return false
end

-- A failed or cancelled run moves on once nothing is in flight: the next
-- compensation, or its end state.
local function wind_down()
  local rs = run_state()
  if rs ~= 'COMPENSATING' and rs ~= 'CANCELLING' then return end
  if num(RF.inflight) > 0 or (hget(RF.undoing) or '') ~= '' then return end
  if start_next_compensation() then return end
  if rs == 'CANCELLING' then
    finish_run('CANCELLED')
  elseif hget(RF.undid) then
    finish_run('COMPENSATED')
  else
    finish_run('FAILED')  -- the run failed, and in the end there was nothing to undo
  end
end

-- The run failed because of `err`: compensate if a completed (or still
-- running) step can be undone, else end FAILED at once.
local function fail_run(err)
  if run_state() ~= 'RUNNING' then return end
  local fields = {}
  for k, s in ipairs(meta().compensable) do fields[k] = s .. SF.state end
  load(fields)
  for _, s in ipairs(meta().compensable) do
    local st = step_state(s)
    -- A child workflow step WAITING for its child is in flight like a running step.
    if st == 'SUCCEEDED' or st == 'RUNNING' or (st == 'WAITING' and info(s).child) then
      move_run('COMPENSATING', {error = err})
      hset(RF.error, err)
      wind_down()
      return
    end
  end
  finish_run('FAILED', err)
end

-- An attempt ended (recorded or given up): one less in flight.
local function attempt_over()
  hset(RF.inflight, math.max(0, num(RF.inflight) - 1))
  wind_down()
end
