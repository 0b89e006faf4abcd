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

-- 1. Take over an entry whose lease expired (its worker died or stalled).
local function take_over()
  local cursor = '0-0'
  repeat
    local r = redis.call('XAUTOCLAIM', STREAM, GROUP, consumer, horizon, cursor, 'COUNT', 1)
    cursor = r[1]
    for _, e in ipairs(r[2]) do
      if type(e) == 'table' then
        local eid = eid_of(e[2])
        if eid then return e[1], eid end
        drop_entry(e[1])
      end
    end
    if type(r[3]) == 'table' then
      for _, gone in ipairs(r[3]) do redis.call('HDEL', LEASES, gone) end
    end
  until cursor == '0-0'
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
