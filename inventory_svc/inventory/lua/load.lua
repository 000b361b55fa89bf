-- Replace one cloth's whole gate with the state computed from PostgreSQL, atomically.
-- KEYS[1] {cloth:<id>}:avail  KEYS[2] {cloth:<id>}:rule  KEYS[3] {cloth:<id>}:bought
-- KEYS[4] {cloth:<id>}:orders
-- ARGV[1] JSON {avail: {v: n}, start_ms, limit, bought: {m: n},
--               records: [{order_id, state, member, n, lines}]}
-- ARGV[2] the record key prefix "{cloth:<id>}:res:" (same hash tag, so the same slot)
-- Answers: {"OK", number of records}
-- Old records are found through the orders set, so no key outside the slot is scanned.
local data = cjson.decode(ARGV[1])
for _, order_id in ipairs(redis.call("SMEMBERS", KEYS[4])) do
  redis.call("DEL", ARGV[2] .. order_id)
end
redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4])
for v, n in pairs(data.avail) do
  redis.call("HSET", KEYS[1], v, n)
end
redis.call("HSET", KEYS[2], "start_ms", data.start_ms, "limit", data.limit)
for m, n in pairs(data.bought) do
  redis.call("HSET", KEYS[3], m, n)
end
for _, r in ipairs(data.records) do
  local key = ARGV[2] .. r.order_id
  redis.call("DEL", key)
  redis.call("HSET", key, "state", r.state, "member", r.member, "n", r.n, "lines", r.lines)
  redis.call("SADD", KEYS[4], r.order_id)
end
return {"OK", tostring(#data.records)}
