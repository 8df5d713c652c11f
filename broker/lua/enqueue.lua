-- Enqueue one message and write its job record in one atomic step.
-- KEYS: job, queue list, queue messages hash, job index, unique-key lock, job events list
-- ARGV: redis_message_id, payload, status, now_ms, ttl_s, actor, canonical queue,
--       args json, eta_ms or "", wake channel, job id, queue name as stored, unique key or "",
--       job key prefix, id of the API token that made the job or ""
-- Returns 1 (enqueued), 0 (the job was cancelled: not put back), or the id of the live job
-- that already holds the unique key (nothing enqueued).
if redis.call("hexists", KEYS[3], ARGV[1]) == 1 then
  -- already enqueued: a retry whose first reply was lost (a worker retries through Redis outages)
  return 1
end
local current = redis.call("hget", KEYS[1], "status")
if current == "cancelled" then
  -- a cancelled job is never put back (e.g. the delay-queue hop of a cancelled delayed job)
  return 0
end
if ARGV[13] ~= "" then
  local owner = redis.call("get", KEYS[5])
  if owner and owner ~= ARGV[11] then
    local status = redis.call("hget", ARGV[14] .. owner, "status")
    if status == "queued" or status == "delayed" or status == "running" or status == "retrying" then
      return owner
    end
  end
  redis.call("set", KEYS[5], ARGV[11], "EX", ARGV[5])
end
redis.call("hset", KEYS[1], "status", ARGV[3], "actor", ARGV[6], "queue", ARGV[7],
           "args", ARGV[8], "eta", ARGV[9], "rid", ARGV[1], "qname", ARGV[12])
if ARGV[13] ~= "" then
  redis.call("hset", KEYS[1], "unique_key", ARGV[13])
end
if ARGV[15] ~= "" then
  redis.call("hset", KEYS[1], "token_id", ARGV[15])
end
if not current then
  redis.call("hset", KEYS[1], "enqueued_at", ARGV[4], "attempts", 0)
  redis.call("zadd", KEYS[4], ARGV[4], ARGV[11])
end
redis.call("expire", KEYS[1], ARGV[5])
-- the job's timeline (admin pages): capped, expiring with the record
-- a retry is logged twice: "retrying" when its backoff starts (with the eta), "retry_due" when it is ready
local event = {at = tonumber(ARGV[4]), event = ARGV[3], queue = ARGV[7]}
if ARGV[9] ~= "" then
  event["eta"] = tonumber(ARGV[9])
elseif ARGV[3] == "retrying" then
  event["event"] = "retry_due"
end
redis.call("rpush", KEYS[6], cjson.encode(event))
redis.call("ltrim", KEYS[6], -100, -1)
redis.call("expire", KEYS[6], ARGV[5])
redis.call("hset", KEYS[3], ARGV[1], ARGV[2])
redis.call("rpush", KEYS[2], ARGV[1])
redis.call("publish", ARGV[10], "1")
return 1
