--! requires:
-- Named arguments. Python renders, for each script, the list of its ARGV
-- names (orchestrator/store/inputs.py) and calls named_args with it, so a
-- script reads A.token instead of ARGV[7]. A variadic last argument collects
-- every remaining ARGV entry into a list.
local function named_args(names, variadic)
  local args = {}
  for k, name in ipairs(names) do
    if name == variadic then
      local rest = {}
      for j = k, #ARGV do rest[#rest + 1] = ARGV[j] end
      args[name] = rest
    else
      args[name] = ARGV[k]
    end
  end
  return args
end
