-- Register a workflow version and its compiled plan. A version is immutable:
-- the same name and version with different content is refused.
-- KEYS[1] workflow hash, KEYS[2] plan hash, KEYS[3] queue set.
-- ARGV[1] version, ARGV[2] canonical JSON, ARGV[3] queue names (JSON list),
-- ARGV[4..] plan hash field/value pairs.
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing and existing ~= ARGV[2] then return 'conflict' end
if not existing then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local fields = {}
for k = 4, #ARGV do fields[#fields + 1] = ARGV[k] end
redis.call('HSET', KEYS[2], unpack(fields))
for _, q in ipairs(cjson.decode(ARGV[3])) do redis.call('SADD', KEYS[3], q) end
return existing and 'exists' or 'created'
