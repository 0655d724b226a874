-- Visitors' first exposures to experiments, a batch at a time (engine/decisions/log.py):
-- the first one per (profile, experiment) is kept and counted into its arm's sums; later
-- ones change nothing (a visitor stays in the arm they were first counted in). A profile
-- merged into a customer's since the decision (identify) is replaced by that customer's,
-- as ingest.lua would have moved the exposure had it been written before the merge.
-- ARGV: base xbase ttl, then (profile, experiment, arm, time, covariate or '', segments)
-- groups. Returns the number of new exposures.
--#include experiment_sums
local base, xbase, ttl = ARGV[1], ARGV[2], ARGV[3]
local n = 0
for i = 4, #ARGV, 6 do
  local profile = redis.call('GET', base .. ARGV[i] .. '}:alias') or ARGV[i]
  local ekey = base .. profile .. '}:exp'
  local exp = ARGV[i + 1]
  local text = table.concat({ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]}, '\t')
  if redis.call('HSETNX', ekey, exp, text) == 1 then
    exp_count(xbase .. exp .. '}:stats', exp_record(text), 1)
    n = n + 1
  end
  redis.call('EXPIRE', ekey, ttl)
end
return n
