-- Find attempts whose lease ran out (their worker was killed, ran out of
-- memory, hit its hard time limit, or lost Redis for longer than a lease).
-- Each expired member is pushed one lease into the future before it is
-- returned, so if the sweeper that took it dies too, another finds it later;
-- the fail script removes it for good. ARGV[1] key prefix, ARGV[2] lease
-- seconds, ARGV[3] batch size.
local leases, lease, batch = ARGV[1] .. 'leases', tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local NOW = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', leases, '-inf', NOW, 'LIMIT', 0, batch)
for _, m in ipairs(due) do redis.call('ZADD', leases, NOW + lease, m) end
return due
