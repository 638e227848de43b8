--! requires: run, dispatch, finish
-- Joins: each step counts its upstreams that succeeded or were skipped; the
-- one that completes the count decides the step's fate. By default any
-- skipped upstream skips it; `none_failed` runs it anyway (skipped inputs are
-- null); `any_succeeded` runs it if at least one upstream succeeded.
local function must_skip(d, skipped)
  if skipped == 0 then return false end
  local tr = info(d).trigger or 'all_succeeded'
  if tr == 'none_failed' then return false end
  return tr == 'all_succeeded' or skipped == #info(d).upstreams
end

-- Step d's join is complete: skip it or dispatch it. Returns what its own
-- dependants must now be told: 'skipped', 'succeeded' (an empty map), or nil.
local function join_complete(d, skipped)
  if must_skip(d, skipped) then
    move_step(d, 'SKIPPED', {reason = 'upstream skipped'})
    hset(d .. SF.finished_at, NOWS)
    return 'skipped'
  end
  if dispatch(d) then return 'succeeded' end
  return nil
end

-- Step `first` has succeeded (or was skipped): count it against each
-- dependant's join, settle the dependants whose last upstream this was, and
-- end the run when nothing is left.
local function settle(first, first_skipped)
  local work = {{first, first_skipped}}
  while #work > 0 do
    local item = table.remove(work)
    local s, was_skipped = item[1], item[2]
    local left = num(RF.left) - 1
    hset(RF.left, left)
    if run_state() == 'RUNNING' then
      local downs = info(s).downstreams
      local fields = {}
      for _, d in ipairs(downs) do
        fields[#fields + 1] = d .. SF.upstreams_done
        fields[#fields + 1] = d .. SF.upstreams_skipped
      end
      load(fields)
      for _, d in ipairs(downs) do
        local got = num(d .. SF.upstreams_done) + 1
        hset(d .. SF.upstreams_done, got)
        local skipped = num(d .. SF.upstreams_skipped)
        if was_skipped then skipped = skipped + 1; hset(d .. SF.upstreams_skipped, skipped) end
        if got == #info(d).upstreams then
          local settled = join_complete(d, skipped)
          if settled then work[#work + 1] = {d, settled == 'skipped'} end
        end
      end
      if left == 0 then finish_run('SUCCEEDED') end
    end
  end
end
