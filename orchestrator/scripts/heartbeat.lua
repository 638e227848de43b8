--! requires: base
-- Extend a live attempt's lease, and its dependency slot if it holds one
-- (HeartbeatArgs); a lease that no longer exists (XX: its outcome was
-- recorded, or it was swept and recorded lost) stays gone. Replies 1 when the
-- lease was extended, 0 when there was none to extend.
local until_ = NOW + tonumber(A.lease)
if A.dependency ~= '' then
  redis.call('ZADD', K.dep_slots(A.dependency), 'XX', 'GT', until_, A.token)
end
return redis.call('ZADD', K.leases, 'XX', 'GT', 'CH', until_, A.member)
