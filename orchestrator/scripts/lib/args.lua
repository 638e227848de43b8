--! requires:
-- Named arguments. Python renders, for each script, the table A of its ARGV
-- by name (orchestrator/store/inputs.py: the field order of its argument
-- dataclass), so a script reads A.token instead of ARGV[7]. A variadic last
-- argument is a list of every remaining ARGV entry, made by rest.
local function rest(first)
  local out = {}
  for j = first, #ARGV do out[#out + 1] = ARGV[j] end
  return out
end
