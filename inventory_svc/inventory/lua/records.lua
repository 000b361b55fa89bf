-- Read the records of the given orders of one cloth, one line each (for the repair sweep).
-- KEYS[1] {cloth:<id>}:orders  (names the slot; the records share its hash tag)
-- ARGV[1] the record key prefix "{cloth:<id>}:res:"; ARGV[2..] order ids
-- Answers one "order_id state member lines at" line per order that has a record, in
-- ARGV's order ("at" empty for a record loaded from PostgreSQL). An order whose record
-- just ended is left out.
local found = {}
for i = 2, #ARGV do
  local r = redis.call("HMGET", ARGV[1] .. ARGV[i], "state", "member", "lines", "at")
  if r[1] then
    found[#found + 1] = ARGV[i] .. " " .. r[1] .. " " .. (r[2] or "0") .. " " .. (r[3] or "") .. " " .. (r[4] or "")
  end
end
return found
