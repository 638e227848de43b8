--! requires: run
--! cold: score_seconds, score_count
-- The scorecard: counters of the run's workflow version, in the hash of the
-- current minute (K.score_minute; fields.py SCORE_FIELDS), counted by the
-- same script that makes the transition, one HINCRBY each. The queue-delay
-- bucket function qd_bucket is rendered from scorecard/histogram.py.
-- Minutes are rolled into hours by rollup.lua.

local function score_key()
  return K.score_minute(hget(RF.workflow), math.floor(NOW / 60))
end

-- An attempt that ended ('ok' or 'fail'), by its queue delay and whether it
-- was the first: queued and started are the attempt's times (epoch strings).
local function score_attempt(s, outcome, queued, started, attempt)
  local qb = 0
  local q, st = tonumber(queued or ''), tonumber(started or '')
  if q and st then qb = qd_bucket(st - q) end
  local first = (tonumber(attempt) or 1) <= 1 and 'f' or 'r'
  redis.call('HINCRBY', score_key(), outcome .. ':' .. s .. ':' .. qb .. ':' .. first, 1)
end

local function score_seconds(field, seconds)
  if seconds and seconds > 0 then
    redis.call('HINCRBYFLOAT', score_key(), field, string.format('%.6f', seconds))
  end
end

local function score_count(field) redis.call('HINCRBY', score_key(), field, 1) end
