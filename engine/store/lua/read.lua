-- A visitor's profile for a decision or recommendation, in one round trip.
-- KEYS[1]: the visitor's features key (declared for routing; the profile may be another).
-- ARGV: base pid personalization_default history_n
-- Returns {0} without personalization consent, else
-- {1, features (flat), history (newest first), the profile's pid (after identity merges)}.
local base, pid = ARGV[1], ARGV[2]
local function key(p, suffix)
  return base .. p .. '}:' .. suffix
end
local function allows(p)
  local value = redis.call('HGET', key(p, 'consent'), 'personalization')
  if not value then
    value = ARGV[3]
  end
  return value == '1'
end
if not allows(pid) then
  return {0}
end
local profile = redis.call('GET', key(pid, 'alias')) or pid
if profile ~= pid and not allows(profile) then
  return {0}
end
local history = {}
local n = tonumber(ARGV[4])
if n > 0 then
  history = redis.call('ZREVRANGE', key(profile, 'history'), 0, n - 1)
end
return {1, redis.call('HGETALL', key(profile, 'features')), history, profile}
