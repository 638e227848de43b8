--! requires: base
-- Find attempts whose lease ran out (their worker was killed, ran out of
-- memory, hit its hard time limit, or lost Redis for longer than a lease)
-- (SweepArgs). Each expired member is pushed one lease into the future
-- before it is returned, so if the sweeper that took it dies too, another
-- finds it later; the fail script removes it for good. Replies the members.
local due = redis.call('ZRANGEBYSCORE', K.leases, '-inf', NOW, 'LIMIT', 0, tonumber(A.batch))
for _, m in ipairs(due) do redis.call('ZADD', K.leases, NOW + tonumber(A.lease), m) end
return due
