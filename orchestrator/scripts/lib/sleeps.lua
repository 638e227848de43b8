--! requires: run
--! cold: days_since_epoch, utc_offset, iso_epoch, output_at, wake_time, start_sleep
-- Durable sleeps: a `sleep:` or `until:` step waits as WAITING with its
-- wake-up time in SF.wake_at and an entry "{run}|{step}" in K.timeouts, the
-- set the wait sweep (due.lua) reads; timeout.lua wakes it. Nothing holds a
-- worker, and everything lives in Redis, so a sleep outlasts any worker and,
-- with AOF, a Redis restart. `until:` reads the time from an upstream's
-- output: epoch seconds, or an ISO-8601 time with Z or a +hh:mm offset.

-- Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian).
local function days_since_epoch(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

-- The UTC offset in seconds of an ISO-8601 suffix ('Z', '+02:00', '-0530'), or nil.
local function utc_offset(suffix)
  if suffix == 'Z' or suffix == 'z' then return 0 end
  local sign, hh, mm = string.match(suffix, '^([%+%-])(%d%d):?(%d%d)$')
  if not sign then return nil end
  local off = (tonumber(hh) * 60 + tonumber(mm)) * 60
  if sign == '-' then return -off end
  return off
end

-- Epoch seconds of an ISO-8601 date-time with an offset, or nil.
local function iso_epoch(text)
  local y, mo, d, h, mi, sec, rest = string.match(text,
    '^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d%.?%d*)(.*)$')
  if not y then return nil end
  local off = utc_offset(rest)
  y, mo, d, h, mi = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi)
  if not off or mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 then return nil end
  return days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + tonumber(sec) - off
end

-- The value at `path` ("step.field.field") in the run's outputs, or nil.
local function output_at(path)
  local source, rest = string.match(path, '^([^.]+)%.?(.*)$')
  local raw = hget(source .. SF.output)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok then return nil end
  for part in string.gmatch(rest, '[^.]+') do
    if type(v) ~= 'table' then return nil end
    local at = v[part]
    if at == nil and tonumber(part) then at = v[tonumber(part) + 1] end
    v = at
  end
  return v
end

-- When sleep step s (plan record i) wakes, or nil when its `until` holds no time.
local function wake_time(i)
  if i.sleep then return NOW + i.sleep end
  local v = output_at(i['until'])
  if type(v) == 'number' then return v end
  if type(v) == 'string' then return iso_epoch(v) end
  return nil
end

-- Put sleep step s to sleep. An `until` with no time wakes at once, to fail.
local function start_sleep(s, i)
  local wake = wake_time(i)
  if wake then
    local at = string.format('%.6f', wake)
    hset(s .. SF.wake_at, at)
    move_step(s, 'WAITING', {wake = wake})
  else
    move_step(s, 'WAITING')
  end
  redis.call('ZADD', K.timeouts, wake or NOW, RUN .. '|' .. s)
end
