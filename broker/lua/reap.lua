-- Re-queue the in-flight messages of dead worker processes; dead-letter poison messages.
-- A worker is dead when its heartbeat is older than the timeout. A message it was running
-- (its job record says running on that broker) counts a crash; after `threshold` crashes
-- the message goes to the dead-letter queue instead of running again.
-- KEYS: heartbeats zset
-- ARGV: namespace, now_ms, timeout_ms, threshold, job ttl_s, queue names (canonical)...
local ns = ARGV[1]
local now = tonumber(ARGV[2])
local threshold = tonumber(ARGV[4])
local dead_workers = redis.call("zrangebyscore", KEYS[1], 0, now - tonumber(ARGV[3]))
local recovered, poisoned = 0, 0

-- the job's timeline (admin pages), capped; `keep` holds it as long as a dead record
local function event(events, fields, keep)
  redis.call("rpush", events, cjson.encode(fields))
  redis.call("ltrim", events, -100, -1)
  if keep then
    redis.call("persist", events)
  else
    redis.call("expire", events, ARGV[5])
  end
end

local function dead_letter(queue, rid, payload, job, crashes, events)
  local reason = "poison message: its worker died while running it " .. crashes .. " times"
  redis.call("zadd", ns .. ":" .. queue .. ".XQ", now, rid)
  redis.call("hset", ns .. ":" .. queue .. ".XQ.msgs", rid, payload)
  redis.call("hdel", ns .. ":" .. queue .. ".msgs", rid)
  redis.call("hset", job, "status", "dead", "finished_at", now, "last_error", reason)
  redis.call("persist", job)
  event(events, {at = now, event = "dead", error = reason}, true)
end

local function recover(name, rid, job, worker, events)
  redis.call("rpush", ns .. ":" .. name, rid)
  redis.call("publish", ns .. ":wake:" .. name, "1")
  if redis.call("exists", job) == 1 then
    if redis.call("hget", job, "status") == "running" then
      redis.call("hset", job, "status", "queued")
    end
    redis.call("hincrby", job, "recoveries", 1)
    redis.call("hset", job, "recovered_at", now, "recovered_from", worker)
    redis.call("expire", job, ARGV[5])
    event(events, {at = now, event = "recovered", worker = worker}, false)
  end
end

for _, worker in ipairs(dead_workers) do
  local worker_name = redis.call("hget", ns .. ":worker:" .. worker, "name") or worker
  for i = 6, #ARGV do
    local queue = ARGV[i]
    for _, name in ipairs({queue, queue .. ".DQ"}) do
      local acks = ns .. ":__acks__." .. worker .. "." .. name
      for _, rid in ipairs(redis.call("smembers", acks)) do
        local payload = redis.call("hget", ns .. ":" .. name .. ".msgs", rid)
        if payload then
          local job_id = cjson.decode(payload)["message_id"]
          local job, events = ns .. ":job:" .. job_id, ns .. ":events:" .. job_id
          local crashes = 0
          if name == queue and redis.call("hget", job, "status") == "running"
             and redis.call("hget", job, "broker") == worker then
            crashes = redis.call("hincrby", job, "crashes", 1)
          end
          if crashes >= threshold then
            dead_letter(queue, rid, payload, job, crashes, events)
            poisoned = poisoned + 1
          else
            recover(name, rid, job, worker_name, events)
            recovered = recovered + 1
          end
        end
      end
      redis.call("del", acks)
    end
  end
  redis.call("zrem", KEYS[1], worker)
  redis.call("del", ns .. ":worker:" .. worker)
end
return {#dead_workers, recovered, poisoned}
