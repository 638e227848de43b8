-- Extend a live attempt's lease (and its dependency slot, if it holds one); a
-- lease already swept (XX) stays gone. ARGV[1] key prefix, ARGV[2] lease
-- seconds, ARGV[3] member, ARGV[4] the attempt's dependency name or '',
-- ARGV[5] its token.
local t = redis.call('TIME')
local until_ = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2])
if ARGV[4] ~= '' then
  redis.call('ZADD', ARGV[1] .. 'dep:' .. ARGV[4] .. ':slots', 'XX', 'GT', until_, ARGV[5])
end
return redis.call('ZADD', ARGV[1] .. 'leases', 'XX', 'GT', until_, ARGV[3])
