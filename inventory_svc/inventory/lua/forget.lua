-- Drop an order's record after PostgreSQL refused what Redis accepted.
-- KEYS[1] {cloth:<id>}:avail  KEYS[2] {cloth:<id>}:bought  KEYS[3] {cloth:<id>}:res:<order_id>
-- KEYS[4] {cloth:<id>}:orders
-- ARGV[1] order_id  ARGV[2] variants whose units go back ("v,v"; "" for none)
-- ARGV[3] the state the caller left the record in ("R" after a reserve, "S" after a sell):
--   a record someone else has moved on since (released, say) is theirs, and left alone, so
--   no unit is given back twice.
-- A unit goes back when PostgreSQL failed for another reason (it is still free); it does not
-- when PostgreSQL's guard said it was not there (Redis had counted it as free by mistake).
-- Answers: {"OK"}; {"NOOP"} no record in that state.
local rec = redis.call("HMGET", KEYS[3], "state", "member", "n", "lines")
if rec[1] ~= ARGV[3] then
  return {"NOOP"}
end
local back = {}
for v in string.gmatch(ARGV[2], "(%d+)") do
  back[v] = true
end
if redis.call("EXISTS", KEYS[1]) == 1 then
  for v, q in string.gmatch(rec[4], "(%d+):(%d+)") do
    if back[v] then
      redis.call("HINCRBY", KEYS[1], v, tonumber(q))
    end
  end
end
if tonumber(redis.call("HINCRBY", KEYS[2], rec[2], -tonumber(rec[3]))) <= 0 then
  redis.call("HDEL", KEYS[2], rec[2])
end
redis.call("DEL", KEYS[3])
redis.call("SREM", KEYS[4], ARGV[1])
return {"OK"}
