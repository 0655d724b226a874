-- A visitor's profile for a decision or recommendation, in one round trip.
-- KEYS[1]: the visitor's features key (declared for routing; the profile may be another).
-- ARGV: base pid personalization_default history_n analytics_default
-- Returns {0} without personalization consent, else {1, features (flat), history (newest
-- first), the profile's pid (after identity merges), 1 if decisions may be logged}.
local base, pid = ARGV[1], ARGV[2]
local function key(p, suffix)
  return base .. p .. '}:' .. suffix
end
local function allows(p, purpose, default)
  local value = redis.call('HGET', key(p, 'consent'), purpose)
  if not value then
    value = default
  end
  return value == '1'
end
if not allows(pid, 'personalization', ARGV[3]) then
  return {0}
end
local profile = redis.call('GET', key(pid, 'alias')) or pid
if profile ~= pid and not allows(profile, 'personalization', ARGV[3]) then
  return {0}
end
local analytics = allows(pid, 'analytics', ARGV[5])
if analytics and profile ~= pid then
  analytics = allows(profile, 'analytics', ARGV[5])
end
local history = {}
local n = tonumber(ARGV[4])
if n > 0 then
  history = redis.call('ZREVRANGE', key(profile, 'history'), 0, n - 1)
end
return {1, redis.call('HGETALL', key(profile, 'features')), history, profile, analytics and 1 or 0}
