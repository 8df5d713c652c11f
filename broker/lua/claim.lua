-- A worker claims a job it is about to run: refused when the job was cancelled.
-- `alone`: this run has its worker to itself (a suspect of the poison guard, see reap.lua).
-- Refused as well when the claiming worker was reaped (its tombstone, see broker.recovery).
-- KEYS: job, job events list, the worker's tombstone
-- ARGV: now_ms, worker, ttl_s, actor, queue, broker id, alone (0/1)
local status = redis.call("hget", KEYS[1], "status")
if status == "cancelled" or redis.call("exists", KEYS[3]) == 1 then
  return 0
end
redis.call("hset", KEYS[1], "status", "running", "started_at", ARGV[1], "worker", ARGV[2], "broker", ARGV[6])
if ARGV[7] == "1" then
  redis.call("hset", KEYS[1], "alone", "1")
else
  redis.call("hdel", KEYS[1], "alone")
end
redis.call("hsetnx", KEYS[1], "actor", ARGV[4])
redis.call("hsetnx", KEYS[1], "queue", ARGV[5])
local attempt = redis.call("hincrby", KEYS[1], "attempts", 1)
redis.call("expire", KEYS[1], ARGV[3])
redis.call("rpush", KEYS[2], cjson.encode({at = tonumber(ARGV[1]), event = "started", worker = ARGV[2],
                                           attempt = attempt}))
redis.call("ltrim", KEYS[2], -100, -1)
redis.call("expire", KEYS[2], ARGV[3])
return 1
