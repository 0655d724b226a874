-- Appends decision records to the event log, indexed per profile so that erasure finds
-- them like the visitor's own events. Called by engine/decisions/log.py, a batch at a time.
-- ARGV: base stream maxlen ttl log_cap, then (profile pid, record JSON) pairs.
-- Returns the number of records appended.
local base, stream = ARGV[1], ARGV[2]
local maxlen, ttl, log_cap = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local n = 0
for i = 6, #ARGV, 2 do
  local profile = ARGV[i]
  local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'e', ARGV[i + 1], 'p', profile)
  local log = base .. profile .. '}:log'
  if redis.call('RPUSH', log, id) > log_cap then
    redis.call('LTRIM', log, -log_cap, -1)
  end
  redis.call('EXPIRE', log, ttl)
  n = n + 1
end
return n
