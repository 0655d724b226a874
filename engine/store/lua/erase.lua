-- Erases a person: the profile the id resolves to, every visitor id merged into it, their
-- consent, aliases and event-log entries; the archiver later drops their archived rows.
-- Their experiment exposures and metric values are taken out of the experiments' sums.
-- ARGV: base pid stream erasures now xbase suffixes...
-- Returns {profile, ids erased, keys deleted, log entries deleted}.
--#include experiment_sums
local base, pid, stream, erasures, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local xbase = ARGV[6]
local function key(p, suffix)
  return base .. p .. '}:' .. suffix
end
local profile = redis.call('GET', key(pid, 'alias')) or pid
local ids = redis.call('SMEMBERS', key(profile, 'aliases'))
ids[#ids + 1] = profile
if profile ~= pid and redis.call('SISMEMBER', key(profile, 'aliases'), pid) == 0 then
  ids[#ids + 1] = pid
end
local log = redis.call('LRANGE', key(profile, 'log'), 0, -1)
local entries = 0
for j = 1, #log, 1000 do
  entries = entries + redis.call('XDEL', stream, unpack(log, j, math.min(j + 999, #log)))
end
local deleted = 0
for _, id in ipairs(ids) do
  for exp, data in pairs(exp_all(key(id, 'exp'))) do
    exp_retract(xbase, exp, data)
  end
  for s = 7, #ARGV do
    deleted = deleted + redis.call('DEL', key(id, ARGV[s]))
  end
  redis.call('ZADD', erasures, now, id)
end
return {profile, #ids, deleted, entries}
