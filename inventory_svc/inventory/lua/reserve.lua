-- Reserve every line of one order within one cloth, or none (the drop's gate).
-- KEYS[1] {cloth:<id>}:avail    hash variant_id -> units available
-- KEYS[2] {cloth:<id>}:rule     hash start_ms, limit; the cloth is loaded iff avail and rule exist
-- KEYS[3] {cloth:<id>}:bought   hash member_id -> units the member holds (reserved or sold)
-- KEYS[4] {cloth:<id>}:res:<order_id>   the order's record: hash state (R|S|X|T), member, n, lines,
--         at (ms when reserved; a record loaded from PostgreSQL has none)
-- KEYS[5] {cloth:<id>}:orders   set of order ids that have a record (so a rebuild can drop them)
-- ARGV[1] order_id  ARGV[2] member_id  ARGV[3] now in ms (server time)  ARGV[4] lines "v:q,v:q"
-- Answers: {"OK"} reserved now; {"AGAIN", state} the order already has a record (a retry);
--   {"NOT_LOADED"}; {"NOT_ON_SALE"}; {"LIMIT_EXCEEDED", held}; {"UNKNOWN_VARIANT", v}; {"SOLD_OUT", v}
-- The limit and the sale start are checked before anything is decremented.
local state = redis.call("HGET", KEYS[4], "state")
if state then
  return {"AGAIN", state}
end
if redis.call("EXISTS", KEYS[1]) == 0 or redis.call("EXISTS", KEYS[2]) == 0 then
  return {"NOT_LOADED"}
end
local rule = redis.call("HMGET", KEYS[2], "start_ms", "limit")
local start_ms = tonumber(rule[1]) or 0
local limit = tonumber(rule[2]) or 0
if start_ms > 0 and tonumber(ARGV[3]) < start_ms then
  return {"NOT_ON_SALE"}
end
local lines = {}
local n = 0
for v, q in string.gmatch(ARGV[4], "(%d+):(%d+)") do
  q = tonumber(q)
  lines[#lines + 1] = {v, q}
  n = n + q
end
if limit > 0 then
  local held = tonumber(redis.call("HGET", KEYS[3], ARGV[2]) or "0")
  if held + n > limit then
    return {"LIMIT_EXCEEDED", tostring(held)}
  end
end
for _, line in ipairs(lines) do
  local avail = redis.call("HGET", KEYS[1], line[1])
  if not avail then
    return {"UNKNOWN_VARIANT", line[1]}
  end
  if tonumber(avail) < line[2] then
    return {"SOLD_OUT", line[1]}
  end
end
for _, line in ipairs(lines) do
  redis.call("HINCRBY", KEYS[1], line[1], -line[2])
end
redis.call("HINCRBY", KEYS[3], ARGV[2], n)
redis.call("HSET", KEYS[4], "state", "R", "member", ARGV[2], "n", n, "lines", ARGV[4], "at", ARGV[3])
redis.call("SADD", KEYS[5], ARGV[1])
return {"OK"}
