-- Re-queue the in-flight messages of dead worker processes; dead-letter poison messages.
-- A worker is dead when its heartbeat is older than the timeout. Only a message it was
-- running (its job record says running on that broker) counts a crash: one it had only
-- prefetched does not. Workers record a first start asynchronously, so a job that kills its
-- worker at once may not show it the first time; every recovered message is therefore
-- marked (`backroom_recovered`) so that its next start is claimed synchronously. A message
-- charged a crash is a suspect (`backroom_isolate`): its next run has its worker to itself
-- (broker.gate), and the claim says so (`alone`). A message is dead-lettered only when it
-- has `threshold` crashes and the last one happened while it ran alone, so neighbours of a
-- poison job are re-run, never blamed. A message whose cancel was requested is cancelled
-- instead of re-queued.
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
  local reason = "poison message: its worker died while running it " .. crashes .. " times, the last time alone"
  redis.call("zadd", ns .. ":" .. queue .. ".XQ", now, rid)
  redis.call("hset", ns .. ":" .. queue .. ".XQ.msgs", rid, payload)
  redis.call("hdel", ns .. ":" .. queue .. ".msgs", rid)
  redis.call("hset", job, "status", "dead", "finished_at", now, "last_error", reason)
  redis.call("persist", job)
  event(events, {at = now, event = "dead", error = reason}, true)
end

-- add option `option` to the payload (Dramatiq's JSON: options come right before message_id)
local function mark(payload, job_id, option)
  local anchor = ',"message_id":"' .. job_id .. '"'
  local at = string.find(payload, anchor, 1, true)
  if not at or string.find(payload, '"' .. option .. '"', 1, true) then
    return payload
  end
  local sep = string.sub(payload, at - 2, at - 2) == "{" and "" or ","
  return string.sub(payload, 1, at - 2) .. sep .. '"' .. option .. '":1' .. string.sub(payload, at - 1)
end

local function mark_recovered(name, rid, payload, job_id, suspect)
  local marked = mark(payload, job_id, "backroom_recovered")
  if suspect then
    marked = mark(marked, job_id, "backroom_isolate")
  end
  if marked ~= payload then
    redis.call("hset", ns .. ":" .. name .. ".msgs", rid, marked)
  end
  return marked
end

local function cancel(name, rid, job, events)
  redis.call("hdel", ns .. ":" .. name .. ".msgs", rid)
  redis.call("hset", job, "status", "cancelled", "finished_at", now)
  redis.call("hdel", job, "cancel_requested")
  event(events, {at = now, event = "cancelled"}, false)
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
          local crashes, alone = 0, false
          local status = redis.call("hget", job, "status")
          local ran = name == queue and status == "running" and redis.call("hget", job, "broker") == worker
          if ran then
            crashes = redis.call("hincrby", job, "crashes", 1)
            alone = redis.call("hget", job, "alone") == "1"
          end
          if name == queue then
            payload = mark_recovered(name, rid, payload, job_id, ran)
          end
          if name == queue and status == "queued" and redis.call("hexists", job, "cancel_requested") == 1 then
            cancel(name, rid, job, events)
          elseif alone and crashes >= threshold then
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
  -- a tombstone: the worker, if only cut off, learns it was reaped, and its late writes are refused
  redis.call("set", ns .. ":reaped:" .. worker, now, "EX", ARGV[5])
end
return {#dead_workers, recovered, poisoned}
