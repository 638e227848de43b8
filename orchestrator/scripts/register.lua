--! requires: base
-- Register a workflow version and its compiled plan (RegisterArgs). A version
-- is immutable: the same name and version with different content is refused.
-- Replies 'created', 'exists' or 'conflict'.
local existing = redis.call('HGET', K.workflow(A.name), A.version)
if existing and existing ~= A.canonical then return 'conflict' end
if not existing then redis.call('HSET', K.workflow(A.name), A.version, A.canonical) end
redis.call('SADD', K.workflows, A.name)
redis.call('HSET', K.plan(A.ref), unpack(A.records))
for _, q in ipairs(cjson.decode(A.queues)) do redis.call('SADD', K.queues, q) end
return existing and 'exists' or 'created'
