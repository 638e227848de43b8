-- Record a step's (or map element's) output and queue what became ready.
-- ARGV[5] step, ARGV[6] element index or '', ARGV[7] token, ARGV[8] output JSON,
-- ARGV[9] payload cap in bytes, ARGV[10] how the output was made: 'call' (the
-- step's dependency was called), 'fallback', 'fallback-after-call' (the
-- dependency was called and failed, then the fallback answered: the failure
-- counts for the breaker), or ''; ARGV[11..15] the runner (see claiming.lua);
-- ARGV[16..] the output's elements when something maps over it.
-- Replies {'ok', ended-state[, 'next', step, index, <claim reply>]}.
local s, idx, token, out, cap, how = ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[10]
local runner = runner_args(11)
local FIRST_ITEM = 16
local want = {'state', 'wf', 'left', 'inflight', 'done', 'undoing',
  s .. '.state', s .. '.tok', s .. '.att', s .. '.left', s .. '.n'}
if infos[s] then
  for _, d in ipairs(infos[s].d) do want[#want + 1] = d .. '.got' end
end
load(want)
-- The attempt is over whatever is recorded below; its lease goes first, so
-- not even a run that has expired can leave it behind.
redis.call('ZREM', LEASES, lease_member(s, idx, token))
if not run_state() then return {'gone'} end
use_plan(hget('wf'))
if step_state(s) ~= 'RUNNING' then return {'stale', step_state(s)} end
local stats = P .. 'stats:' .. hget('wf')
local function account()
  local d = info(s).dep
  if d then
    free_slot(d, token)
    if how == 'call' then note(d, 'ok', token); breaker_after(d, s, token, true) end
    if how == 'fallback-after-call' then
      note(d, 'fail', token); breaker_after(d, s, token, false)
    end
  end
  if how == 'fallback' or how == 'fallback-after-call' then
    hset(s .. '.fb', '1')
    event({step = s, index = idx ~= '' and tonumber(idx) or nil, fallback = true})
  end
end

local function succeed(output, extra)
  move_step(s, 'SUCCEEDED', extra)
  hset(s .. '.out', output)
  -- A step that succeeded after failed attempts has no error: the status shows
  -- the outcome, and each failed attempt's error stays in the event history.
  hset(s .. '.err', '')
  hset(s .. '.f', NOWS)
  mark_done(s)
  local n = #ARGV - FIRST_ITEM + 1
  if info(s).mo then
    local IK = RK .. ':items:' .. s
    for k = FIRST_ITEM, #ARGV, 500 do
      local args = {}
      for j = k, math.min(k + 499, #ARGV) do
        args[#args + 1] = j - FIRST_ITEM
        args[#args + 1] = ARGV[j]
      end
      redis.call('HSET', IK, unpack(args))
    end
    -- The run may have ended already (a parallel branch failed): its keys are
    -- expiring, and this new one must expire with them rather than outlive it.
    local ttl = redis.call('PTTL', RK)
    if ttl > 0 then redis.call('PEXPIRE', IK, ttl) end
    hset(s .. '.n', n)
  end
  settle(s, false)
end

if idx == '' then
  if hget(s .. '.tok') ~= token then return {'stale', 'token'} end
  account()
  redis.call('HINCRBY', stats, 'ok:' .. s, 1)
  succeed(out, {attempt = num(s .. '.att')})
else
  local PT = RK .. ':parts:' .. s
  local part = redis.call('HMGET', PT, 't' .. idx, 'o' .. idx)
  if part[1] ~= token or part[2] then return {'stale', 'token'} end
  account()
  redis.call('HINCRBY', stats, 'ok:' .. s, 1)
  redis.call('HSET', PT, 'o' .. idx, out)
  local left = num(s .. '.left') - 1
  hset(s .. '.left', left)
  if left == 0 then
    local n = num(s .. '.n')
    local chunks = {}
    for k = 0, n - 1, 500 do
      local fields = {}
      for j = k, math.min(k + 499, n - 1) do fields[#fields + 1] = 'o' .. j end
      chunks[#chunks + 1] = table.concat(redis.call('HMGET', PT, unpack(fields)), ',')
    end
    local whole = '[' .. table.concat(chunks, ',') .. ']'
    if #whole > cap then
      local err = cjson.encode({type = 'PayloadTooLargeError', message = 'mapped output is ' .. #whole ..
        ' bytes, above ORCH_MAX_PAYLOAD_BYTES=' .. cap})
      move_step(s, 'FAILED', {error = err})
      hset(s .. '.err', err)
      hset(s .. '.f', NOWS)
      fail_run('step ' .. s .. ' failed: ' .. err)
    else
      succeed(whole, {elements = n})
    end
  end
end
attempt_over()
return recorded(runner)
