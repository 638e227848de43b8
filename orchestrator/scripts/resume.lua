--! requires: run, joins, finish, replies
-- Resume a FAILED run as a new run (A.run) of the same workflow version
-- (ResumeArgs): the old run's succeeded and skipped steps are carried over
-- with their outputs, never run again, and the steps they make ready are
-- dispatched. The old run stays FAILED (terminal states never change); the
-- two are linked by resumed_as / resumed_from.
-- Replies 'created' | 'existing' {new run id}, 'state' {old state}, 'gone'.
local old_id = A.old_run
local OK = K.run(old_id)
local raw = redis.call('HGETALL', OK)
if #raw == 0 then return reply('gone') end
local old = {}
for k = 1, #raw, 2 do old[raw[k]] = raw[k + 1] end
if old[RF.state] ~= 'FAILED' then return reply('state', {old[RF.state]}) end
if old[RF.resumed_as] then return reply('existing', {old[RF.resumed_as]}) end
use_plan(old[RF.workflow])
move_run('PENDING', {resumed_from = old_id})
hset(RF.workflow, old[RF.workflow])
hset(RF.input, old[RF.input])
hset(RF.created_at, NOWS)
hset(RF.key, '')
hset(RF.resumed_from, old_id)
if old[RF.context] then hset(RF.context, old[RF.context]) end
if old[RF.priority] then hset(RF.priority, old[RF.priority]) end
if old[RF.fairness_key] then hset(RF.fairness_key, old[RF.fairness_key]) end

-- What a kept step carries over: its state, output and times.
local CARRIED = {SF.output, SF.attempts, SF.queued_at, SF.started_at, SF.finished_at,
  SF.elements, SF.fallback, SF.child}
local kept, order = {}, meta().order
for _, s in ipairs(order) do
  local st = old[s .. SF.state]
  if st == 'SUCCEEDED' or st == 'SKIPPED' then
    kept[s] = st
    hset(s .. SF.state, st)
    for _, f in ipairs(CARRIED) do
      if old[s .. f] then hset(s .. f, old[s .. f]) end
    end
    event({step = s, from = cjson.null, to = st, restored_from = old_id})
    if redis.call('EXISTS', K.items(old_id, s)) == 1 then
      -- COPY keeps the old run's expiry: the copy must live as long as the new run.
      redis.call('COPY', K.items(old_id, s), K.items(RUN, s))
      redis.call('PERSIST', K.items(RUN, s))
    end
  end
end
local completed = {}
for s in string.gmatch(old[RF.completed] or '', '([^,]+)') do
  if kept[s] == 'SUCCEEDED' then completed[#completed + 1] = s .. ',' end
end
hset(RF.completed, table.concat(completed))
local left = #order
for _ in pairs(kept) do left = left - 1 end
hset(RF.left, left)
move_run('RUNNING')
-- Each step not kept starts with the join its kept upstreams already make.
for _, s in ipairs(order) do
  if not kept[s] then
    local got, skipped = 0, 0
    for _, u in ipairs(info(s).upstreams) do
      if kept[u] then got = got + 1 end
      if kept[u] == 'SKIPPED' then skipped = skipped + 1 end
    end
    hset(s .. SF.upstreams_done, got)
    hset(s .. SF.upstreams_skipped, skipped)
    if got == #info(s).upstreams then
      local settled = join_complete(s, skipped)
      if settled then settle(s, settled == 'skipped') end
    end
  end
end
if left == 0 and run_state() == 'RUNNING' then finish_run('SUCCEEDED') end
redis.call('HSET', OK, RF.resumed_as, RUN)
redis.call('ZADD', K.runs, NOW, RUN)
redis.call('ZADD', K.score_active, NOW, old[RF.workflow])
commit()
return reply('created', {RUN})
