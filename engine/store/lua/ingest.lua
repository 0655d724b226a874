-- One event batch, atomically, in one round trip: consent, duplicate filter, identity
-- merge, event log, features, history. Called by engine/store/profiles.py.
--
-- ARGV: base now ttl dedup_window history_size stream maxlen analytics_default
--       log_cap merge_spec, then per event:
--       pid event_id record customer_pid ts n_items items... n_ops (kind field value ts keep)...
-- Returns {accepted, duplicates, dropped_without_consent}.

local base = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = ARGV[3]
local dedup_window = tonumber(ARGV[4])
local history_size = tonumber(ARGV[5])
local stream = ARGV[6]
local maxlen = ARGV[7]
local analytics_default = ARGV[8]
local log_cap = tonumber(ARGV[9])
local merge_spec = ARGV[10]
local today = math.floor(now / 86400)
local DATA = {'features', 'history', 'eids', 'log', 'aliases'}

local function key(pid, suffix)
  return base .. pid .. '}:' .. suffix
end

local function num(x)
  if x == math.floor(x) and math.abs(x) < 1e15 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- day buckets "<day>:<count>,..." (models/features.py reads the same text)
local function buckets(texts, oldest)
  local counts, days = {}, {}
  for _, text in ipairs(texts) do
    for d, c in string.gmatch(text, '(%d+):([^,]+)') do
      d = tonumber(d)
      if d > oldest then
        if counts[d] == nil then
          days[#days + 1] = d
          counts[d] = 0
        end
        counts[d] = counts[d] + tonumber(c)
      end
    end
  end
  table.sort(days)
  local parts = {}
  for _, d in ipairs(days) do
    parts[#parts + 1] = d .. ':' .. num(counts[d])
  end
  return table.concat(parts, ',')
end

local function set_or_delete(fkey, field, text)
  if text == '' then
    redis.call('HDEL', fkey, field)
  else
    redis.call('HSET', fkey, field, text)
  end
end

local function incr(fkey, field, value)
  if string.find(value, '[%.eE]') then
    redis.call('HINCRBYFLOAT', fkey, field, value)
  else
    redis.call('HINCRBY', fkey, field, value)
  end
end

local function bucket_add(fkey, field, day, amount, keep)
  local oldest = today - keep
  if day <= oldest then
    return
  end
  local text = redis.call('HGET', fkey, field) or ''
  set_or_delete(fkey, field, buckets({text, day .. ':' .. amount}, oldest))
end

local function apply(fkey, kind, field, value, ts, keep)
  if kind == 'incr' then
    incr(fkey, field, value)
  elseif kind == 'max' or kind == 'min' then
    local current = tonumber(redis.call('HGET', fkey, field))
    local new = tonumber(value)
    if current == nil or (kind == 'max' and new > current) or (kind == 'min' and new < current) then
      redis.call('HSET', fkey, field, value)
    end
  elseif kind == 'newest' then
    local at = tonumber(redis.call('HGET', fkey, field .. '@'))
    if at == nil or ts >= at then
      redis.call('HSET', fkey, field, value, field .. '@', num(ts))
    end
  elseif kind == 'bucket' then
    bucket_add(fkey, field, math.floor(ts / 86400), value, keep)
  elseif kind == 'session' then
    local last = tonumber(redis.call('HGET', fkey, 'last_seen'))
    if last == nil or ts - last > tonumber(value) then
      redis.call('HINCRBY', fkey, field, 1)
      bucket_add(fkey, 'w.' .. field, math.floor(ts / 86400), 1, keep)
    end
  else
    error('unknown feature op ' .. kind)
  end
end

local rules = nil
local function rule_of(field)
  if rules == nil then
    rules = {}
    for name, rule in string.gmatch(merge_spec, '([^=;]+)=([^;]+)') do
      rules[name] = rule
    end
  end
  return rules[field] or rules[string.match(field, '^([^.]+)%.') or ''] or 'keep'
end

local function push_all(dest, items)
  for j = 1, #items, 1000 do
    redis.call('RPUSH', dest, unpack(items, j, math.min(j + 999, #items)))
  end
end

-- Moves profile `src` into profile `dst`: counters add, times take the max/min,
-- `newest` fields the later one, day buckets add per day, histories interleave by time.
local function merge(src, dst)
  local sf, df = key(src, 'features'), key(dst, 'features')
  local flat = redis.call('HGETALL', sf)
  for j = 1, #flat, 2 do
    local field, value = flat[j], flat[j + 1]
    if string.sub(field, -1) ~= '@' then
      local rule = rule_of(field)
      if rule == 'sum' then
        incr(df, field, value)
      elseif rule == 'max' or rule == 'min' then
        apply(df, rule, field, value, 0, 0)
      elseif rule == 'newest' then
        local at = tonumber(redis.call('HGET', sf, field .. '@')) or 0
        apply(df, 'newest', field, value, at, 0)
      elseif rule == 'buckets' then
        local text = redis.call('HGET', df, field) or ''
        set_or_delete(df, field, buckets({text, value}, today - 366))
      else
        redis.call('HSETNX', df, field, value)
      end
    end
  end
  for _, suffix in ipairs({'history', 'eids'}) do
    local s, d = key(src, suffix), key(dst, suffix)
    if redis.call('EXISTS', s) == 1 then
      redis.call('ZUNIONSTORE', d, 2, d, s, 'AGGREGATE', 'MAX')
    end
  end
  push_all(key(dst, 'log'), redis.call('LRANGE', key(src, 'log'), 0, -1))
  for _, alias in ipairs(redis.call('SMEMBERS', key(src, 'aliases'))) do
    redis.call('SET', key(alias, 'alias'), dst, 'EX', ttl)
    redis.call('SADD', key(dst, 'aliases'), alias)
  end
  for _, suffix in ipairs(DATA) do
    redis.call('DEL', key(src, suffix))
  end
end

local function profile_of(pid)
  local alias = redis.call('GET', key(pid, 'alias'))
  if alias then
    return alias
  end
  return pid
end

local function allows_analytics(pid)
  local value = redis.call('HGET', key(pid, 'consent'), 'analytics')
  if not value then
    value = analytics_default
  end
  return value == '1'
end

-- The visitor `pid` (now on `profile`) says it is customer `cpid`.
local function identify(pid, profile, cpid)
  local target = profile_of(cpid)
  if target == profile then
    return profile -- merged before: nothing to do
  end
  if profile == pid then
    merge(pid, target) -- an anonymous profile joins the customer's
  else
    redis.call('SREM', key(profile, 'aliases'), pid) -- a shared device: re-point only
  end
  redis.call('SET', key(pid, 'alias'), target, 'EX', ttl)
  redis.call('SADD', key(target, 'aliases'), pid)
  return target
end

local visitors, touched, touched_list = {}, {}, {}
local accepted, duplicates, dropped = 0, 0, 0
local i = 11
while i <= #ARGV do
  local pid, event_id, record, cpid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ts = tonumber(ARGV[i + 4])
  local n_items = tonumber(ARGV[i + 5])
  local items_at = i + 6
  local n_ops = tonumber(ARGV[items_at + n_items])
  local ops_at = items_at + n_items + 1
  i = ops_at + 5 * n_ops

  local visitor = visitors[pid]
  if visitor == nil then
    local profile = profile_of(pid)
    local ok = allows_analytics(pid) and (profile == pid or allows_analytics(profile))
    visitor = {profile = profile, ok = ok}
    visitors[pid] = visitor
    redis.call('EXPIRE', key(pid, 'consent'), ttl)
  end
  if not visitor.ok then
    dropped = dropped + 1
  elseif (tonumber(redis.call('ZSCORE', key(visitor.profile, 'eids'), event_id)) or -1)
      >= now - dedup_window then
    duplicates = duplicates + 1
  else
    if cpid ~= '' and cpid ~= visitor.profile then
      visitor.profile = identify(pid, visitor.profile, cpid)
      for other, state in pairs(visitors) do
        if state.profile == pid then
          state.profile = visitor.profile
        end
      end
    end
    local profile = visitor.profile
    if not touched[profile] then
      touched[profile] = true
      touched_list[#touched_list + 1] = profile
    end
    redis.call('ZADD', key(profile, 'eids'), now, event_id)
    local sid = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', record, 'p', profile)
    redis.call('RPUSH', key(profile, 'log'), sid)
    local fkey = key(profile, 'features')
    for j = ops_at, ops_at + 5 * n_ops - 1, 5 do
      apply(fkey, ARGV[j], ARGV[j + 1], ARGV[j + 2], tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4]))
    end
    for j = items_at, items_at + n_items - 1 do
      redis.call('ZADD', key(profile, 'history'), 'GT', ts, ARGV[j])
    end
    accepted = accepted + 1
  end
end

for _, profile in ipairs(touched_list) do
  redis.call('ZREMRANGEBYRANK', key(profile, 'history'), 0, -(history_size + 1))
  redis.call('ZREMRANGEBYSCORE', key(profile, 'eids'), '-inf', '(' .. num(now - dedup_window))
  redis.call('ZREMRANGEBYRANK', key(profile, 'eids'), 0, -(log_cap + 1))
  redis.call('LTRIM', key(profile, 'log'), -log_cap, -1)
  for _, suffix in ipairs(DATA) do
    redis.call('EXPIRE', key(profile, suffix), ttl)
  end
end
for pid, _ in pairs(visitors) do
  redis.call('EXPIRE', key(pid, 'alias'), ttl)
end
return {accepted, duplicates, dropped}
