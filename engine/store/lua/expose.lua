-- Visitors' first exposures to experiments, a batch at a time (engine/decisions/log.py):
-- the first one per (profile, experiment) is kept and counted into its arm's sums; later
-- ones change nothing (a visitor stays in the arm they were first counted in). A profile
-- merged into a customer's since the decision (identify) is replaced by that customer's,
-- as ingest.lua would have moved the exposure had it been written before the merge.
-- A person erased after the decision is not exposed again by it. Outcomes that arrived
-- with this experiment's token before the exposure was written (kept as the visitor's
-- values, outside the sums) are counted in with it.
-- An exposure of an experiment counted at the impression waits as "?<experiment>" until
-- the impression confirms it (or counts at once if the impression came first).
-- ARGV: base xbase ttl erasures, then (profile, experiment, arm, time, covariate or '',
-- segments, confirm 1|0) groups. Returns the number of new exposures counted.
--#include experiment_sums
local base, xbase, ttl, erasures = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = 0
for i = 5, #ARGV, 7 do
  local profile = redis.call('GET', base .. ARGV[i] .. '}:alias') or ARGV[i]
  local erased = tonumber(redis.call('ZSCORE', erasures, profile))
  local ekey = base .. profile .. '}:exp'
  local exp = ARGV[i + 1]
  local text = table.concat({ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]}, '\t')
  if erased == nil or erased < tonumber(ARGV[i + 3]) then
    local waits = ARGV[i + 6] == '1' and redis.call('HEXISTS', ekey, '!' .. exp) == 0
    if waits then
      if redis.call('HEXISTS', ekey, exp) == 0 then
        redis.call('HSETNX', ekey, '?' .. exp, text)
      end
    elseif exp_admit(ekey, xbase, exp, text) then
      n = n + 1
    end
    redis.call('EXPIRE', ekey, ttl)
  end
end
return n
