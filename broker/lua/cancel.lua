-- Cancel a job that has not started. Returns the status the job has afterwards ("" if unknown),
-- or "cancelling" when a worker holds the message: that worker decides (see broker.tracking).
-- KEYS: job, job events list    ARGV: now_ms, namespace, job id
local status = redis.call("hget", KEYS[1], "status")
if not status then
  return ""
end
if status ~= "queued" and status ~= "delayed" and status ~= "retrying" then
  return status
end
local rid = redis.call("hget", KEYS[1], "rid")
local qname = redis.call("hget", KEYS[1], "qname")
if status == "queued" and rid and qname then
  local queue = ARGV[2] .. ":" .. qname
  if redis.call("lrem", queue, 1, rid) > 0 then
    redis.call("hdel", queue .. ".msgs", rid)
  else
    -- fetched by a worker: only that worker knows whether it started it, so it is asked
    for _, worker in ipairs(redis.call("zrange", ARGV[2] .. ":__heartbeats__", 0, -1)) do
      if redis.call("sismember", ARGV[2] .. ":__acks__." .. worker .. "." .. qname, rid) == 1 then
        redis.call("hset", KEYS[1], "cancel_requested", ARGV[1])
        redis.call("publish", ARGV[2] .. ":cancel:" .. worker, ARGV[3])
        return "cancelling"
      end
    end
    return status -- in flight between lists (e.g. being recovered): not cancellable this instant
  end
end
-- a delayed or retrying message is refused by the enqueue script when its hop comes due
redis.call("hset", KEYS[1], "status", "cancelled", "finished_at", ARGV[1])
redis.call("rpush", KEYS[2], cjson.encode({at = tonumber(ARGV[1]), event = "cancelled"}))
redis.call("ltrim", KEYS[2], -100, -1)
local ttl = redis.call("ttl", KEYS[1])
if ttl > 0 then
  redis.call("expire", KEYS[2], ttl)
end
return "cancelled"
