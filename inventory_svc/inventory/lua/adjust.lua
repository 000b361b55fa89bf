-- Add (or take away) units of one variant after a restock, a correction or a new variant.
-- KEYS[1] {cloth:<id>}:avail  KEYS[2] {cloth:<id>}:rule
-- ARGV[1] variant_id  ARGV[2] signed number of units
-- Answers: {"OK", available now}; {"NOT_LOADED"} (the next reserve rebuilds from PostgreSQL,
-- which already has the change).
if redis.call("EXISTS", KEYS[1]) == 0 or redis.call("EXISTS", KEYS[2]) == 0 then
  return {"NOT_LOADED"}
end
return {"OK", tostring(redis.call("HINCRBY", KEYS[1], ARGV[1], tonumber(ARGV[2])))}
