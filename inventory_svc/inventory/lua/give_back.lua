-- Give an order's units back to the gate: release (R -> X) or return after a refund (S -> T).
-- KEYS[1] {cloth:<id>}:avail  KEYS[2] {cloth:<id>}:bought  KEYS[3] {cloth:<id>}:res:<order_id>
-- KEYS[4] {cloth:<id>}:orders
-- ARGV[1] order_id  ARGV[2] state it must be in ("R" or "S")  ARGV[3] state after ("X" or "T")
-- ARGV[4] seconds to keep the finished record (a late retry of the reserve still sees it)
-- Answers: {"OK"} units given back; {"NOOP", state or ""} nothing held here for that order
-- (already given back, never reserved in Redis, or lost with Redis: then the rebuild from
-- PostgreSQL counted them already), so calling it twice gives back once.
local rec = redis.call("HMGET", KEYS[3], "state", "member", "n", "lines")
if rec[1] ~= ARGV[2] then
  return {"NOOP", rec[1] or ""}
end
if redis.call("EXISTS", KEYS[1]) == 1 then
  for v, q in string.gmatch(rec[4], "(%d+):(%d+)") do
    redis.call("HINCRBY", KEYS[1], v, tonumber(q))
  end
end
if tonumber(redis.call("HINCRBY", KEYS[2], rec[2], -tonumber(rec[3]))) <= 0 then
  redis.call("HDEL", KEYS[2], rec[2])
end
redis.call("HSET", KEYS[3], "state", ARGV[3])
redis.call("EXPIRE", KEYS[3], tonumber(ARGV[4]))
redis.call("SREM", KEYS[4], ARGV[1])
return {"OK"}
