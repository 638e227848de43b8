--! requires: run, finish
-- The one reply builder. Every engine script answers
--   {kind, ended run state or '', this call's decisions as a JSON list or '', payload...}
-- and orchestrator/store/replies.py is the only place that reads a reply.
local function reply(kind, payload)
  local r = {kind, ended_state() or '', notes()}
  if payload then
    for k = 1, #payload do r[#r + 1] = payload[k] end
  end
  return r
end

-- What an attempt (or a `when` predicate, or a compensation) is given to run:
--   {attempt, run input, mode, [queued at, started at, run context,] upstream, its output, ...}
-- The bracketed times and context only when the caller observes (hooks listen):
-- every reply element costs the worker a parse.
-- For an element of a map step (idx ~= '') the mapped-over upstream gives
-- just that element; a compensation (own) also gets the step's own output.
local function attempt_inputs(s, idx, att, mode, queued_field, own)
  local i = info(s)
  local outs = {}
  for k, u in ipairs(i.upstreams) do outs[k] = u .. SF.output end
  load(outs)
  local r = {tostring(att), hget(RF.input), mode}
  if OBSERVE then
    r[4], r[5], r[6] = hget(s .. queued_field) or '', NOWS, hget(RF.context) or ''
  end
  for _, u in ipairs(i.upstreams) do
    r[#r + 1] = u
    if idx ~= '' and u == i.map then
      r[#r + 1] = redis.call('HGET', K.items(RUN, u), idx)
    else
      r[#r + 1] = hget(u .. SF.output)
    end
  end
  if own then
    r[#r + 1] = s
    r[#r + 1] = hget(s .. SF.output)
  end
  return r
end
