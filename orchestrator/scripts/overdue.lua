--! requires: base
-- Take the runs whose deadline passed (OverdueArgs): each is removed from
-- K.deadlines as it is returned, so exactly one caller cancels it.
local due = redis.call('ZRANGEBYSCORE', K.deadlines, '-inf', NOW, 'LIMIT', 0, tonumber(A.batch))
if #due > 0 then redis.call('ZREM', K.deadlines, unpack(due)) end
return due
