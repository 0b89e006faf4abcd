-- ARGV: 2 consumer, 3 lease ms, 4 nonce, 5 horizon ms.
-- A lease of L ms is an idle time of (horizon - L) ms set on the pending entry, so the entry
-- becomes claimable by XAUTOCLAIM (min idle = horizon) exactly when its lease runs out.
-- Returns {entry id, execution id, attempt} or nil.
local consumer, lease, nonce, horizon = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
ensure_group()

local function eid_of(fields)
  if type(fields) ~= 'table' then return nil end
  for i = 1, #fields, 2 do
    if fields[i] == 'eid' then return fields[i + 1] end
  end
  return nil
end

-- 1. Take over an entry whose lease expired (its worker died or stalled): XPENDING finds the
-- oldest one (the PEL scan happens in C), XAUTOCLAIM takes it from there. (It runs first: on a
-- stream that lost its group it fails before anything was changed, and the caller retries.)
local function take_over()
  for _ = 1, 10 do
    local p = redis.call('XPENDING', STREAM, GROUP, 'IDLE', horizon, '-', '+', 1)
    if #p == 0 then return nil end
    local from = p[1][1]
    local r = redis.call('XAUTOCLAIM', STREAM, GROUP, consumer, horizon, from, 'COUNT', 1)
    if type(r[3]) == 'table' then
      for _, gone in ipairs(r[3]) do redis.call('HDEL', LEASES, gone) end
    end
    local e = r[2][1]
    if type(e) == 'table' then
      local eid = eid_of(e[2])
      if eid then return e[1], eid end
      drop_entry(e[1])
    elseif #r[2] > 0 then
      -- Redis 6.2 returns a deleted entry as nil and keeps it pending: drop it.
      drop_entry(from)
    end
  end
  return nil
end

-- 2. Move retries whose delay passed to the end of their owners' lists.
local function promote_due()
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now_ms(), 'LIMIT', 0, 100)
  for _, eid in ipairs(due) do
    redis.call('ZREM', DELAYED, eid)
    push_job(eid, owner_of(eid))
  end
end

-- 3. A never-delivered entry of the stream: one added before the owners' lists existed (an
-- upgrade), or by a process of an older version. Returns the entry, or nothing and whether
-- the stream has no undelivered entry left.
local function read_new()
  for _ = 1, 10 do
    local r = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', 1, 'STREAMS', STREAM, '>')
    if not r then return nil, nil, true end
    local e = r[1][2][1]
    if not e then return nil, nil, true end
    local eid = eid_of(e[2])
    if eid then return e[1], eid end
    drop_entry(e[1])
  end
  return nil, nil, false
end

-- 4. The fair choice: the first job of the ring's first owner (the one served longest ago, or
-- never), added to the stream and read at once for this consumer, so the lease machinery
-- above applies to it as to any entry. The owner goes to the ring's end, or leaves the ring
-- when that was its last job.
local function next_fair()
  for _ = 1, 10 do
    local owner = redis.call('ZRANGE', RING, 0, 0)[1]
    if not owner then return nil end
    local key = pending_key(owner)
    local eid = redis.call('LPOP', key)
    if eid then
      local stamp = redis.call('INCR', SEQ)
      redis.call('HSET', SERVED, owner, stamp)
      if redis.call('LLEN', key) == 0 then
        redis.call('ZREM', RING, owner)
      else
        redis.call('ZADD', RING, 'XX', stamp, owner)
      end
      redis.call('XADD', STREAM, '*', 'eid', eid)
      -- The stream had no undelivered entry, so this reads the one just added.
      local r = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', 1, 'STREAMS', STREAM, '>')
      local e = r and r[1][2][1]
      if type(e) == 'table' and eid_of(e[2]) then return e[1], eid_of(e[2]) end
      return nil
    end
    -- An owner in the ring without jobs (its list was deleted): not in the ring either.
    redis.call('ZREM', RING, owner)
  end
  return nil
end

local id, eid = take_over()
if not id then
  promote_due()
  local drained
  id, eid, drained = read_new()
  if not id and drained then
    id, eid = next_fair()
  end
end
if not id then return nil end
redis.call('XCLAIM', STREAM, GROUP, consumer, 0, id, 'IDLE', horizon - lease, 'JUSTID')
redis.call('HSET', LEASES, id, nonce)
local attempt = redis.call('HINCRBY', ATTEMPTS, eid, 1)
return {id, eid, attempt}
