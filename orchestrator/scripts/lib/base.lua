--! requires:
-- What every script knows: the prefix of its keys (K.… names are rendered
-- from keys.py under it) and the time, read once from Redis so that every
-- timestamp and every deadline comes from one clock whatever the workers'.
local P = A.prefix

local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local NOWS = string.format('%.6f', NOW)
