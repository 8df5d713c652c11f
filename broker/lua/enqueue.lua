-- Enqueue one message and write its job record in one atomic step.
-- KEYS: job, queue list, queue messages hash, job index
-- ARGV: redis_message_id, payload, status, now_ms, ttl_s, actor, canonical queue,
--       args json, eta_ms or "", wake channel, job id, queue name as stored
local current = redis.call("hget", KEYS[1], "status")
if current == "cancelled" then
  -- a cancelled job is never put back (e.g. the delay-queue hop of a cancelled delayed job)
  return 0
end
redis.call("hset", KEYS[1], "status", ARGV[3], "actor", ARGV[6], "queue", ARGV[7],
           "args", ARGV[8], "eta", ARGV[9], "rid", ARGV[1], "qname", ARGV[12])
if not current then
  redis.call("hset", KEYS[1], "enqueued_at", ARGV[4], "attempts", 0)
  redis.call("zadd", KEYS[4], ARGV[4], ARGV[11])
end
redis.call("expire", KEYS[1], ARGV[5])
redis.call("hset", KEYS[3], ARGV[1], ARGV[2])
redis.call("rpush", KEYS[2], ARGV[1])
redis.call("publish", ARGV[10], "1")
return 1
