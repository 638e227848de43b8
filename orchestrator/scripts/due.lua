--! requires: base
-- Take the waiting steps whose signal timeout passed (DueArgs): each is
-- removed from K.timeouts as it is returned, so exactly one caller handles it.
local due = redis.call('ZRANGEBYSCORE', K.timeouts, '-inf', NOW, 'LIMIT', 0, tonumber(A.batch))
if #due > 0 then redis.call('ZREM', K.timeouts, unpack(due)) end
return due
