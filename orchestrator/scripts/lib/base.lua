--! requires:
-- What every script knows: the key space (K, rendered from keys.py, under the
-- prefix the caller passed) and the time, read once from Redis so that every
-- timestamp and every deadline comes from one clock whatever the workers'.
local P = A.prefix
local K = keyspace(P)
local clock = redis.call('TIME')
local NOW = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local NOWS = string.format('%.6f', NOW)
