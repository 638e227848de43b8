-- Take the members of a schedule (a ZSET scored by due time) that are due:
-- each is removed as it is returned, so exactly one caller handles it.
-- KEYS[1] the schedule, ARGV[1] batch size.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
