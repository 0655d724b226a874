-- Everything stored about a visitor, for an export request.
-- ARGV: base pid stream
-- Returns {profile, consent (flat), features (flat), history (flat, with scores),
--          aliases, event ids seen (flat, with scores), log entries [[id, fields]...],
--          experiments (flat: the exposure records and metric values)}.
local base, pid, stream = ARGV[1], ARGV[2], ARGV[3]
local function key(p, suffix)
  return base .. p .. '}:' .. suffix
end
local profile = redis.call('GET', key(pid, 'alias')) or pid
local entries = {}
for _, id in ipairs(redis.call('LRANGE', key(profile, 'log'), 0, -1)) do
  local found = redis.call('XRANGE', stream, id, id)
  if #found > 0 then
    entries[#entries + 1] = found[1]
  end
end
return {
  profile,
  redis.call('HGETALL', key(pid, 'consent')),
  redis.call('HGETALL', key(profile, 'features')),
  redis.call('ZRANGE', key(profile, 'history'), 0, -1, 'WITHSCORES'),
  redis.call('SMEMBERS', key(profile, 'aliases')),
  redis.call('ZRANGE', key(profile, 'eids'), 0, -1, 'WITHSCORES'),
  entries,
  redis.call('HGETALL', key(profile, 'exp')),
}
