-- wrk script for the create floor table in BENCHMARKS.md: POST /sessions/create with the bench's
-- admin key and a user id of its own per request (no user reaches the limit, so none evicts).
-- `wrk -t1 -c1 -d3s -s bench/create.lua http://ADDR -- PREFIX` (PREFIX: distinct per run).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  prefix = args[1] or "w"
  n = 0
end
request = function()
  n = n + 1
  local body = '{"user_id": "' .. prefix .. '-' .. tid .. '-' .. n .. '", "timeout": 3600}'
  return wrk.format("POST", "/sessions/create", {
    ["authorization"] = "Bearer bench-admin-key-0123456789abcdef",
    ["content-type"] = "application/json",
  }, body)
end
