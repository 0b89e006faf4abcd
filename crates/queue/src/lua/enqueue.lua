-- ARGV: 2 execution id. Returns 1 when added, 0 when the job already exists.
if redis.call('SADD', QUEUED, ARGV[2]) == 0 then
  return 0
end
ensure_group()
redis.call('XADD', STREAM, '*', 'eid', ARGV[2])
return 1
