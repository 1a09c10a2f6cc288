-- POST a ~500-byte CloudEvents 1.0 event with a random UUID id per request, as producers
-- (our SDKs, `eg emit`) send them: no de-duplication, and every insert lands on another
-- page of the gateway's de-duplication index, as it does in production.
local data = string.rep("x", 300)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/cloudevents+json"

function init(args)
  -- LuaJIT's generator starts from the same seed in every wrk thread and every run.
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000) % 1000)
end

local function uuid4()
  return string.format(
    "%08x-%04x-4%03x-%04x-%06x%06x",
    math.random(0, 0x7fffffff), math.random(0, 0xffff), math.random(0, 0xfff),
    math.random(0x8000, 0xbfff), math.random(0, 0xffffff), math.random(0, 0xffffff)
  )
end

request = function()
  local body = '{"specversion":"1.0","id":"' .. uuid4() ..
    '","source":"/bench","type":"bench.tick","datacontenttype":"application/json",' ..
    '"data":{"user":"ada","note":"' .. data .. '"}}'
  return wrk.format(nil, nil, nil, body)
end
