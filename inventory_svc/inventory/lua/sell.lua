-- Commit a paid order's units as sold in the gate (R -> S).
-- KEYS[1] {cloth:<id>}:avail  KEYS[2] {cloth:<id>}:rule  KEYS[3] {cloth:<id>}:bought
-- KEYS[4] {cloth:<id>}:res:<order_id>  KEYS[5] {cloth:<id>}:orders
-- ARGV[1] order_id  ARGV[2] member_id  ARGV[3] lines "v:q,v:q" (from PostgreSQL)
-- Answers: {"OK"} held units now sold; {"ALREADY"} sold before (a retry);
--   {"REACQUIRED"} the record was released or missing and the units were still free: taken now;
--   {"SOLD_OUT", v} released and gone (nothing changed); {"NOT_LOADED"}.
-- Taking units again is all or nothing, so a payment that came late never sells a unit twice.
local state = redis.call("HGET", KEYS[4], "state")
if state == "R" then
  redis.call("HSET", KEYS[4], "state", "S")
  return {"OK"}
end
if state == "S" then
  return {"ALREADY"}
end
if redis.call("EXISTS", KEYS[1]) == 0 or redis.call("EXISTS", KEYS[2]) == 0 then
  return {"NOT_LOADED"}
end
local lines = {}
local n = 0
for v, q in string.gmatch(ARGV[3], "(%d+):(%d+)") do
  q = tonumber(q)
  lines[#lines + 1] = {v, q}
  n = n + q
end
for _, line in ipairs(lines) do
  if tonumber(redis.call("HGET", KEYS[1], line[1]) or "0") < line[2] then
    return {"SOLD_OUT", line[1]}
  end
end
for _, line in ipairs(lines) do
  redis.call("HINCRBY", KEYS[1], line[1], -line[2])
end
redis.call("HINCRBY", KEYS[3], ARGV[2], n)
redis.call("DEL", KEYS[4])
redis.call("HSET", KEYS[4], "state", "S", "member", ARGV[2], "n", n, "lines", ARGV[3])
redis.call("SADD", KEYS[5], ARGV[1])
return {"REACQUIRED"}
