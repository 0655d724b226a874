-- One event batch, atomically, in one round trip: consent, duplicate filter, identity
-- merge, event log, features, history. Called by engine/store/profiles.py.
--
-- ARGV: base now ttl dedup_window history_size stream maxlen analytics_default
--       log_cap merge_spec batch xbase max_metrics, then (pid, event_id, record) per event
-- batch (JSON): [[customer_pid, ts, [items], [[kind, field, value, keep_days?], ...],
--               [outcome, ...]?], ...];
-- kinds: i(ncr) >(max) <(min) n(ewest) b(ucket) s(ession); record: the log entry (JSON).
-- The optional fifth element lists what an accepted event does to aggregates
-- (engine/events/outcomes.py): ['c', marker, key, field] adds 1 to a counter unless the
-- marker is among the profile's seen ids (then it is added: once per decision);
-- ['i', experiment] confirms the visitor's exposure at their impression (experiments with
-- "exposure": "impression"); ['x', experiment, metric, aggregation, value, window_s,
-- decided_at?] moves the visitor's
-- value of an experiment's metric, if they were exposed to it within the window, or if
-- the event carries the experiment's token (decided_at), whose exposure may still be in
-- a worker's buffer: expose.lua then counts the value in (xbase: the experiments' key
-- base).
-- Plain arguments cost Redis nothing to decode; JSON is kept to what needs structure.
-- Returns {accepted, duplicates, dropped_without_consent}.
--
-- Each profile's hash is read once into a table, updated in memory and written back
-- once: Redis calls, not Lua, are what an event costs here.

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
local batch = cjson.decode(ARGV[11])
local xbase = ARGV[12] -- ARGV[13]: "<exp>|<metric>;..." combining by max on a merge
local today = math.floor(now / 86400)
local CLOCK_SLACK_S = 30
local DATA = {'features', 'history', 'eids', 'log', 'aliases', 'exp'}

--#include experiment_sums

local function key(pid, suffix)
  return base .. pid .. '}:' .. suffix
end

local function num(x)
  if x == math.floor(x) and math.abs(x) < 1e15 then
    return string.format('%d', x)
  end
  return string.format('%.15g', x)
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

-- A profile's features, held in memory while the batch runs.
local profiles = {}

local function load(profile)
  local state = profiles[profile]
  if state == nil then
    local values = {}
    local flat = redis.call('HGETALL', key(profile, 'features'))
    for j = 1, #flat, 2 do
      values[flat[j]] = flat[j + 1]
    end
    state = {values = values, dirty = {}, sids = {}, items = {}}
    profiles[profile] = state
  end
  return state
end

local function set(state, field, value)
  state.values[field] = value
  state.dirty[field] = true
end

local function bucket_add(state, field, day, amount, keep)
  local oldest = today - keep
  if day > oldest then
    set(state, field, buckets({state.values[field] or '', day .. ':' .. num(amount)}, oldest))
  end
end

local function apply(state, kind, field, value, ts, keep)
  local values = state.values
  if kind == 'i' then
    set(state, field, num((tonumber(values[field]) or 0) + value))
  elseif kind == '>' or kind == '<' then
    local current = tonumber(values[field])
    if current == nil or (kind == '>' and value > current) or (kind == '<' and value < current) then
      set(state, field, num(value))
    end
  elseif kind == 'n' then
    local at = tonumber(values[field .. '@'])
    if at == nil or ts >= at then
      set(state, field, tostring(value))
      set(state, field .. '@', num(ts))
    end
  elseif kind == 'b' then
    bucket_add(state, field, math.floor(ts / 86400), value, keep)
  elseif kind == 's' then
    local last = tonumber(values['last_seen'])
    if last == nil or ts - last > value then
      set(state, field, num((tonumber(values[field]) or 0) + 1))
      bucket_add(state, 'w.' .. field, math.floor(ts / 86400), 1, keep)
    end
  else
    error('unknown feature op ' .. kind)
  end
end

local function flush(profile)
  local state = profiles[profile]
  if state == nil then
    return
  end
  local fkey = key(profile, 'features')
  local fields, empty = {}, {}
  for field, _ in pairs(state.dirty) do
    local value = state.values[field]
    if value == '' and string.sub(field, 1, 2) == 'w.' then
      empty[#empty + 1] = field
    else
      fields[#fields + 1] = field
      fields[#fields + 1] = value
    end
  end
  for j = 1, #fields, 1000 do -- Lua's stack limits unpack, and a merge can be large
    redis.call('HSET', fkey, unpack(fields, j, math.min(j + 999, #fields)))
  end
  for j = 1, #empty, 1000 do
    redis.call('HDEL', fkey, unpack(empty, j, math.min(j + 999, #empty)))
  end
  local lkey, hkey, ekey = key(profile, 'log'), key(profile, 'history'), key(profile, 'eids')
  if #state.sids > 0 then
    redis.call('RPUSH', lkey, unpack(state.sids))
  end
  if #state.items > 0 then
    redis.call('ZADD', hkey, 'GT', unpack(state.items))
  end
  if #state.items > 0 or state.housekeeping then
    redis.call('ZREMRANGEBYRANK', hkey, 0, -(history_size + 1))
    redis.call('EXPIRE', hkey, ttl)
  end
  -- Trimming the log index and the seen ids every 16th event is enough: their caps are
  -- soft by that much, and it saves a third of the calls a one-event visitor costs.
  local events = tonumber(state.values['events']) or 0
  if state.housekeeping or events % 16 < #state.sids then
    redis.call('LTRIM', lkey, -log_cap, -1)
    redis.call('ZREMRANGEBYSCORE', ekey, '-inf', '(' .. num(now - dedup_window))
    redis.call('ZREMRANGEBYRANK', ekey, 0, -(log_cap + 1))
  end
  redis.call('EXPIRE', fkey, ttl)
  redis.call('EXPIRE', lkey, ttl)
  redis.call('EXPIRE', ekey, ttl)
  redis.call('EXPIRE', key(profile, 'exp'), ttl) -- experiment values live as long as the rest
  if state.values['aliases@'] then
    redis.call('EXPIRE', key(profile, 'aliases'), ttl)
  end
  profiles[profile] = nil
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

local max_metrics = nil
-- How a person's two values of one metric combine: conversions by max (converted on
-- either side), counts and sums by adding.
local function combine(exp, metric, a, b)
  if max_metrics == nil then
    max_metrics = {}
    for name in string.gmatch(ARGV[13], '([^;]+)') do
      max_metrics[name] = true
    end
  end
  if a == nil or b == nil then
    return a or b
  end
  if max_metrics[exp .. '|' .. metric] then
    return math.max(a, b)
  end
  return a + b
end

-- Experiments of a visitor merging into a customer: the person counts once, in the arm
-- of the customer's exposure if they had one (else the visitor's moves over), with each
-- metric's values combined. Everything both sides put in the sums is taken out, then the
-- person's combined values go back in under the exposure that remains. Values without
-- an exposure (it waits in a worker's buffer) stay outside the sums, combined too.
local function merge_experiments(src, dst)
  local dst_exp = key(dst, 'exp')
  local into_all = exp_all(dst_exp)
  for exp, data in pairs(exp_all(key(src, 'exp'))) do
    local into = into_all[exp] or {values = {}}
    local skey = xbase .. exp .. '}:stats'
    for _, mark in ipairs({'?', '!'}) do -- an exposure waiting for its impression
      if data[mark] and not into[mark] then
        redis.call('HSET', dst_exp, mark .. exp, data[mark])
        into[mark] = data[mark]
      end
    end
    if data.rec ~= nil then
      exp_retract(xbase, exp, data)
    end
    if into.rec ~= nil then
      for metric, y in pairs(into.values) do
        exp_value(skey, into.rec, metric, y, 0)
      end
    end
    local rec = into.rec
    if rec == nil and data.rec ~= nil then
      rec = data.rec
      redis.call('HSET', dst_exp, exp, data.text)
      exp_count(skey, rec, 1)
    end
    local metrics = {}
    for metric, _ in pairs(into.values) do
      metrics[metric] = true
    end
    for metric, _ in pairs(data.values) do
      metrics[metric] = true
    end
    for metric, _ in pairs(metrics) do
      local y = combine(exp, metric, into.values[metric], data.values[metric])
      redis.call('HSET', dst_exp, exp .. '|' .. metric, num(y))
      if rec ~= nil then
        exp_value(skey, rec, metric, 0, y)
      end
    end
    if rec ~= nil then
      redis.call('HDEL', dst_exp, '?' .. exp, '!' .. exp)
    elseif into['?'] and into['!'] then -- the record of one side, the impression of the other
      exp_admit(dst_exp, xbase, exp, into['?'])
    end
  end
  redis.call('EXPIRE', dst_exp, ttl)
end

-- Moves profile `src` into profile `dst` (both flushed): counters add, times take the
-- max/min, `newest` fields the later one, day buckets add per day, histories interleave.
local function merge(src, dst)
  local from = load(src).values
  local into = load(dst)
  for field, value in pairs(from) do
    if string.sub(field, -1) ~= '@' then
      local rule = rule_of(field)
      if rule == 'sum' then
        apply(into, 'i', field, tonumber(value), 0, 0)
      elseif rule == 'max' then
        apply(into, '>', field, tonumber(value), 0, 0)
      elseif rule == 'min' then
        apply(into, '<', field, tonumber(value), 0, 0)
      elseif rule == 'newest' then
        apply(into, 'n', field, value, tonumber(from[field .. '@']) or 0, 0)
      elseif rule == 'buckets' then
        set(into, field, buckets({into.values[field] or '', value}, today - 366))
      elseif into.values[field] == nil then
        set(into, field, value)
      end
    end
  end
  set(into, 'aliases@', '1')
  into.housekeeping = true
  profiles[src] = nil
  flush(dst)
  for _, suffix in ipairs({'history', 'eids'}) do
    local s, d = key(src, suffix), key(dst, suffix)
    if redis.call('EXISTS', s) == 1 then
      redis.call('ZUNIONSTORE', d, 2, d, s, 'AGGREGATE', 'MAX')
    end
  end
  push_all(key(dst, 'log'), redis.call('LRANGE', key(src, 'log'), 0, -1))
  merge_experiments(src, dst)
  for _, alias in ipairs(redis.call('SMEMBERS', key(src, 'aliases'))) do
    redis.call('SET', key(alias, 'alias'), dst, 'EX', ttl)
    redis.call('SADD', key(dst, 'aliases'), alias)
  end
  for _, suffix in ipairs(DATA) do
    redis.call('DEL', key(src, suffix))
    redis.call('EXPIRE', key(dst, suffix), ttl) -- what the union just created has none
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
    return analytics_default == '1'
  end
  redis.call('EXPIRE', key(pid, 'consent'), ttl)
  return value == '1'
end

-- The visitor `pid` (now on `profile`) says it is customer `cpid`.
local function identify(pid, profile, cpid)
  local target = profile_of(cpid)
  if target == profile then
    return profile -- merged before: nothing to do
  end
  flush(profile)
  flush(target)
  if profile == pid then
    merge(pid, target) -- an anonymous profile joins the customer's
  else
    redis.call('SREM', key(profile, 'aliases'), pid) -- a shared device: re-point only
  end
  redis.call('SET', key(pid, 'alias'), target, 'EX', ttl)
  redis.call('SADD', key(target, 'aliases'), pid)
  redis.call('EXPIRE', key(target, 'aliases'), ttl)
  local state = load(target)
  set(state, 'aliases@', '1')
  return target
end

local function is_duplicate(profile, event_id)
  local eids = key(profile, 'eids')
  if redis.call('ZADD', eids, 'NX', now, event_id) == 1 then
    return false
  end
  if tonumber(redis.call('ZSCORE', eids, event_id)) >= now - dedup_window then
    return true
  end
  redis.call('ZADD', eids, now, event_id) -- seen before the window: new again
  return false
end

-- ['x', experiment, metric, aggregation, value, window_s, decided_at?] for an accepted
-- event at `ts`; decided_at when the event carries this experiment's token.
local function experiment_outcome(profile, outcome, ts)
  local exp, metric, aggregation = outcome[2], outcome[3], outcome[4]
  local ekey = key(profile, 'exp')
  local text = redis.call('HGET', ekey, exp)
  local rec = text and exp_record(text)
  local since = rec and rec.at or outcome[7]
  if since == nil then
    return -- not exposed: the event is not this experiment's business
  end
  -- `since` is the server's time, `ts` the client's: an event with the experiment's token
  -- came after its decision whatever its clock says; others get a little slack
  local early = outcome[7] and math.huge or CLOCK_SLACK_S
  if ts < since - early or ts - since > outcome[6] then
    return
  end
  local field = exp .. '|' .. metric
  local old = tonumber(redis.call('HGET', ekey, field)) or 0
  local new = old + outcome[5]
  if aggregation == 'conversion' then
    new = 1
  elseif aggregation == 'count' then
    new = old + 1
  end
  if new ~= old then
    redis.call('HSET', ekey, field, num(new))
    redis.call('EXPIRE', ekey, ttl)
    if rec then
      exp_value(xbase .. exp .. '}:stats', rec, metric, old, new)
    end -- else the exposure is on its way (the decision log's next batch) and adds it
  end
end

local visitors, touched = {}, {}
local accepted, duplicates, dropped = 0, 0, 0
for n, event in ipairs(batch) do
  local cpid, ts, items, ops = event[1], event[2], event[3], event[4]
  local at = 11 + 3 * n
  local pid, event_id, record = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local visitor = visitors[pid]
  if visitor == nil then
    local profile = profile_of(pid)
    local ok = allows_analytics(pid) and (profile == pid or allows_analytics(profile))
    visitor = {profile = profile, ok = ok}
    visitors[pid] = visitor
    if profile ~= pid then
      redis.call('EXPIRE', key(pid, 'alias'), ttl)
    end
  end
  if not visitor.ok then
    dropped = dropped + 1
  elseif is_duplicate(visitor.profile, event_id) then
    duplicates = duplicates + 1
  else
    if cpid ~= '' and cpid ~= visitor.profile then
      local before = visitor.profile
      visitor.profile = identify(pid, before, cpid)
      for _, other in pairs(visitors) do
        if other.profile == before and before == pid then
          other.profile = visitor.profile
        end
      end
      redis.call('ZADD', key(visitor.profile, 'eids'), now, event_id)
    end
    local profile = visitor.profile
    touched[profile] = true
    local state = load(profile)
    state.sids[#state.sids + 1] =
      redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', record, 'p', profile)
    for _, op in ipairs(ops) do
      apply(state, op[1], op[2], op[3], ts, op[4])
    end
    for _, item in ipairs(items) do
      state.items[#state.items + 1] = ts
      state.items[#state.items + 1] = item
    end
    for _, outcome in ipairs(event[5] or {}) do
      if outcome[1] == 'c' then
        if not is_duplicate(profile, outcome[2]) then
          redis.call('HINCRBY', outcome[3], outcome[4], 1)
        end
      elseif outcome[1] == 'i' then
        exp_confirm(key(profile, 'exp'), xbase, outcome[2])
        redis.call('EXPIRE', key(profile, 'exp'), ttl)
      else
        experiment_outcome(profile, outcome, ts)
      end
    end
    accepted = accepted + 1
  end
end

for profile, _ in pairs(touched) do
  flush(profile)
end
return {accepted, duplicates, dropped}
