-- POST a ~500-byte CloudEvents 1.0 event with a unique id per request (no de-duplication).
local counter = 0
local thread_id = tostring(math.random(1, 1000000000))
local data = string.rep("x", 300)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/cloudevents+json"
request = function()
  counter = counter + 1
  local body = '{"specversion":"1.0","id":"' .. thread_id .. "-" .. counter ..
    '","source":"/bench","type":"bench.tick","datacontenttype":"application/json",' ..
    '"data":{"user":"ada","note":"' .. data .. '"}}'
  return wrk.format(nil, nil, nil, body)
end
