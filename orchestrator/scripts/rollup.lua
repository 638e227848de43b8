--! requires: base
-- Roll closed minutes of the scorecard into hours (RollupArgs), for every
-- version with a run submitted or finished within A.keep_hours. Each minute is added
-- to its hour once: the version's K.score_rolled marks the last minute done,
-- and the whole pass is one atomic call, so any number of workers may run it.
-- A minute is closed once it is two minutes old (scripts count with Redis
-- time, so nothing writes to it any more). Minutes are kept A.keep_minutes
-- seconds, hours A.keep_hours. Replies the number of minutes rolled.
local keep_minutes, keep_hours = tonumber(A.keep_minutes), tonumber(A.keep_hours)
local now_minute = math.floor(NOW / 60)
local upto = now_minute - 2
-- At most the minutes a minute bucket lives: older ones have expired (or, never
-- rolled because no worker ran for that long, are given up).
local oldest = upto - math.floor(keep_minutes / 60) + 1
local rolled = 0
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', K.score_active, NOW - keep_hours, '+inf')) do
  local last = tonumber(redis.call('GET', K.score_rolled(ref)) or '') or (oldest - 1)
  for m = math.max(last + 1, oldest), upto do
    local minute = K.score_minute(ref, m)
    local fields = redis.call('HGETALL', minute)
    if #fields > 0 then
      local hour = K.score_hour(ref, math.floor(m / 60))
      for k = 1, #fields, 2 do
        if string.sub(fields[k], 1, 8) == 'failsec:' then
          redis.call('HINCRBYFLOAT', hour, fields[k], fields[k + 1])
        else
          redis.call('HINCRBY', hour, fields[k], fields[k + 1])
        end
      end
      redis.call('EXPIRE', hour, keep_hours)
      redis.call('EXPIRE', minute, keep_minutes)
      rolled = rolled + 1
    end
  end
  if upto > last then redis.call('SET', K.score_rolled(ref), upto, 'EX', keep_hours) end
end
redis.call('ZREMRANGEBYSCORE', K.score_active, '-inf', NOW - keep_hours)
return rolled
