-- Cancel a job that has not started. Returns the status the job has afterwards ("" if unknown).
-- KEYS: job, job events list    ARGV: now_ms, namespace
local status = redis.call("hget", KEYS[1], "status")
if not status then
  return ""
end
if status ~= "queued" and status ~= "delayed" and status ~= "retrying" then
  return status
end
redis.call("hset", KEYS[1], "status", "cancelled", "finished_at", ARGV[1])
redis.call("rpush", KEYS[2], cjson.encode({at = tonumber(ARGV[1]), event = "cancelled"}))
redis.call("ltrim", KEYS[2], -100, -1)
local ttl = redis.call("ttl", KEYS[1])
if ttl > 0 then
  redis.call("expire", KEYS[2], ttl)
end
-- drop the message if no worker fetched it yet; a fetched one is skipped at claim time
local rid = redis.call("hget", KEYS[1], "rid")
local qname = redis.call("hget", KEYS[1], "qname")
if rid and qname then
  local queue = ARGV[2] .. ":" .. qname
  if redis.call("lrem", queue, 1, rid) > 0 then
    redis.call("hdel", queue .. ".msgs", rid)
  end
end
return "cancelled"
