-- Experiment sums, included by the scripts that change them (engine/experiments/tracking.py).
-- A visitor's `exp` hash holds, under an experiment's id, their exposure record
-- "<arm>\t<first exposure time>\t<covariate or empty>\t<segments, comma-separated>",
-- and under "<experiment>|<metric>" their value of that metric. The experiment's stats
-- hash (`<xbase><id>}:stats`) holds per arm and segment ('*' is everyone):
-- n/<arm>/<seg>, x/.., xx/.. (covariate sums), and per metric s/<metric>/<arm>/<seg>,
-- ss/.., xy/..; and d/<day>/<arm>, exposures per day.
-- Experiments counting exposure at the impression (`"exposure": "impression"`) keep the
-- record under "?<experiment>" until the visitor's impression with the experiment's
-- token confirms it; "!<experiment>" marks an impression that came before the record.
local function exp_record(text)
  local arm, at, x, segs = string.match(text, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  return {arm = arm, at = tonumber(at), x = tonumber(x), segs = segs}
end

local function exp_segments(rec)
  local out = {'*'}
  for seg in string.gmatch(rec.segs, '([^,]+)') do
    out[#out + 1] = seg
  end
  return out
end

-- sign 1 counts a visitor's exposure into the sums, -1 takes it out
local function exp_count(skey, rec, sign)
  for _, seg in ipairs(exp_segments(rec)) do
    local suffix = '/' .. rec.arm .. '/' .. seg
    redis.call('HINCRBY', skey, 'n' .. suffix, sign)
    if rec.x then
      redis.call('HINCRBYFLOAT', skey, 'x' .. suffix, sign * rec.x)
      redis.call('HINCRBYFLOAT', skey, 'xx' .. suffix, sign * rec.x * rec.x)
    end
  end
  redis.call('HINCRBY', skey, 'd/' .. math.floor(rec.at / 86400) .. '/' .. rec.arm, sign)
end

-- the visitor's value of `metric` moved from `old` to `new`
local function exp_value(skey, rec, metric, old, new)
  for _, seg in ipairs(exp_segments(rec)) do
    local suffix = '/' .. metric .. '/' .. rec.arm .. '/' .. seg
    redis.call('HINCRBYFLOAT', skey, 's' .. suffix, new - old)
    redis.call('HINCRBYFLOAT', skey, 'ss' .. suffix, new * new - old * old)
    if rec.x then
      redis.call('HINCRBYFLOAT', skey, 'xy' .. suffix, rec.x * (new - old))
    end
  end
end

-- A visitor's experiment data, from their `exp` hash: {exp = {rec, values = {metric = y}}}
local function exp_all(ekey)
  local flat = redis.call('HGETALL', ekey)
  local out = {}
  for j = 1, #flat, 2 do
    local field, value = flat[j], flat[j + 1]
    local exp, metric = string.match(field, '^([^|]+)|(.+)$')
    local first = string.sub(field, 1, 1)
    if first == '?' or first == '!' then
      out[string.sub(field, 2)] = out[string.sub(field, 2)] or {values = {}}
      out[string.sub(field, 2)][first] = value -- not counted: waiting for a confirmation
    elseif exp == nil then
      out[field] = out[field] or {values = {}}
      out[field].rec = exp_record(value)
      out[field].text = value
    else
      out[exp] = out[exp] or {values = {}}
      out[exp].values[metric] = tonumber(value)
    end
  end
  return out
end

-- takes one visitor's exposure and values of experiment `exp` out of its sums
local function exp_retract(xbase, exp, data)
  if data.rec == nil then
    return
  end
  local skey = xbase .. exp .. '}:stats'
  for metric, y in pairs(data.values) do
    exp_value(skey, data.rec, metric, y, 0)
  end
  exp_count(skey, data.rec, -1)
end

-- Counts a confirmed exposure `text` of `exp` in: the record, n and the values the visitor
-- already has (outcomes that came with the experiment's token before it).
local function exp_admit(ekey, xbase, exp, text)
  if redis.call('HSETNX', ekey, exp, text) == 0 then
    return false
  end
  local rec = exp_record(text)
  local skey = xbase .. exp .. '}:stats'
  exp_count(skey, rec, 1)
  for metric, y in pairs(exp_all(ekey)[exp].values) do
    exp_value(skey, rec, metric, 0, y)
  end
  redis.call('HDEL', ekey, '?' .. exp, '!' .. exp)
  return true
end

-- The visitor's impression with the experiment's token: count the waiting record in, or
-- mark that the impression came first (the record is still in a worker's buffer).
local function exp_confirm(ekey, xbase, exp)
  if redis.call('HEXISTS', ekey, exp) == 1 then
    return
  end
  local text = redis.call('HGET', ekey, '?' .. exp)
  if text then
    exp_admit(ekey, xbase, exp, text)
  else
    redis.call('HSET', ekey, '!' .. exp, '1')
  end
end
