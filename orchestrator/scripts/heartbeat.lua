-- Extend a live attempt's lease; a lease already swept (XX) stays gone.
-- ARGV[1] key prefix, ARGV[2] lease seconds, ARGV[3] member.
local t = redis.call('TIME')
local NOW = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZADD', ARGV[1] .. 'leases', 'XX', 'GT', NOW + tonumber(ARGV[2]), ARGV[3])
