-- A worker is about to run a step (or one element of a map step): record the
-- attempt and hand back what the step needs, or say why it must not run.
-- ARGV[5] step, ARGV[6] element index or '', ARGV[7] attempt token, ARGV[8] worker,
-- ARGV[9] lease seconds, ARGV[10] 'open' once the worker found the step's
-- `when` predicate true. A step already running is never taken over here: a
-- lost attempt is found by its expired lease (sweep), which counts it.
-- Replies: {'run', attempt, input, mode, upstream, output, ...} with mode 'task',
-- 'fallback' or 'open' (breaker open, no fallback: fail fast), or 'gate' (the
-- inputs for the `when` predicate; nothing was recorded); {'wait', why,
-- seconds} (requeued for later, holding no worker); {'skip'|'stop'|'gone', ...}.
local r = claim_step(ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]), ARGV[10])
flush()
return r
