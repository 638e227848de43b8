-- Resume a FAILED run as a new run (KEYS[1], KEYS[2]) of the same workflow
-- version: the old run's succeeded and skipped steps are carried over with
-- their outputs, never run again, and the steps they make ready are queued.
-- The old run stays FAILED (terminal states never change); the two are
-- linked by `resumed_as` / `resumed_from`. ARGV[5] old run id.
local old_id = ARGV[5]
local OK = P .. 'run:' .. old_id
local raw = redis.call('HGETALL', OK)
if #raw == 0 then return {'gone'} end
local old = {}
for k = 1, #raw, 2 do old[raw[k]] = raw[k + 1] end
if old.state ~= 'FAILED' then return {'state', old.state} end
if old.resumed_as then return {'existing', old.resumed_as} end
use_plan(old.wf)
move_run('PENDING', {resumed_from = old_id})
hset('wf', old.wf)
hset('input', old.input)
hset('created_at', NOWS)
hset('key', '')
hset('resumed_from', old_id)
local kept, order = {}, meta().order
for _, s in ipairs(order) do
  local st = old[s .. '.state']
  if st == 'SUCCEEDED' or st == 'SKIPPED' then
    kept[s] = st
    hset(s .. '.state', st)
    for _, f in ipairs({'.out', '.att', '.q', '.s', '.f', '.n', '.fb'}) do
      if old[s .. f] then hset(s .. f, old[s .. f]) end
    end
    event({step = s, from = cjson.null, to = st, restored_from = old_id})
    if redis.call('EXISTS', OK .. ':items:' .. s) == 1 then
      -- COPY keeps the old run's expiry: the copy must live as long as the new run.
      redis.call('COPY', OK .. ':items:' .. s, RK .. ':items:' .. s)
      redis.call('PERSIST', RK .. ':items:' .. s)
    end
  end
end
local done = {}
for s in string.gmatch(old.done or '', '([^,]+)') do
  if kept[s] == 'SUCCEEDED' then done[#done + 1] = s .. ',' end
end
hset('done', table.concat(done))
local left = #order
for _ in pairs(kept) do left = left - 1 end
hset('left', left)
move_run('RUNNING')
for _, s in ipairs(order) do
  if not kept[s] then
    local i = info(s)
    local got, skipped = 0, 0
    for _, u in ipairs(i.up) do
      if kept[u] then got = got + 1 end
      if kept[u] == 'SKIPPED' then skipped = skipped + 1 end
    end
    hset(s .. '.got', got)
    hset(s .. '.skp', skipped)
    if got == #i.up then
      if must_skip(s, skipped) then
        move_step(s, 'SKIPPED', {reason = 'upstream skipped'})
        settle(s, true)
      elseif dispatch(s) then
        settle(s, false)
      end
    end
  end
end
if left == 0 and run_state() == 'RUNNING' then finish_run('SUCCEEDED') end
redis.call('HSET', OK, 'resumed_as', RUN)
redis.call('ZADD', P .. 'runs', NOW, RUN)
flush()
return {'created', RUN}
