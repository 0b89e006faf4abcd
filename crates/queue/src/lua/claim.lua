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
-- oldest one (the PEL scan happens in C), XAUTOCLAIM takes it from there.
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

-- 2. Move retries whose delay passed into the stream.
local function promote_due()
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now_ms(), 'LIMIT', 0, 100)
  for _, eid in ipairs(due) do
    redis.call('ZREM', DELAYED, eid)
    redis.call('XADD', STREAM, '*', 'eid', eid)
  end
end

-- 3. A never-delivered entry.
local function read_new()
  for _ = 1, 10 do
    local r = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', 1, 'STREAMS', STREAM, '>')
    if not r then return nil end
    local e = r[1][2][1]
    if not e then return nil end
    local eid = eid_of(e[2])
    if eid then return e[1], eid end
    drop_entry(e[1])
  end
  return nil
end

local id, eid = take_over()
if not id then
  promote_due()
  id, eid = read_new()
end
if not id then return nil end
redis.call('XCLAIM', STREAM, GROUP, consumer, 0, id, 'IDLE', horizon - lease, 'JUSTID')
redis.call('HSET', LEASES, id, nonce)
local attempt = redis.call('HINCRBY', ATTEMPTS, eid, 1)
return {id, eid, attempt}
