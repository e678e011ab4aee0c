-- wrk script of bench/lib/load.ts: sends the requests listed in a file, in
-- turn (each thread from its own offset), and prints wrk's figures as one
-- JSON line. A request is one line of tab-separated fields: method, path,
-- body (empty for none), then headers as "name: value". A request whose path
-- or body holds the marker {unique} gets a text unique across the run in its
-- place, made of the thread's number and a counter ("3-1027"): it never
-- matches the marker's warm-up values, which have no "-".

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local requests = {}
local n = 0
local i = 0
local count = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
  return fields
end

function init(args)
  for line in io.lines(args[1]) do
    local f = split(line)
    local headers = {}
    for k = 4, #f do
      local name, value = f[k]:match("^([^:]+): (.*)$")
      headers[name] = value
    end
    local body = f[3] ~= "" and f[3] or nil
    local unique = f[2]:find("{unique}", 1, true) or (body and body:find("{unique}", 1, true))
    if unique then
      requests[#requests + 1] = { method = f[1], path = f[2], body = body, headers = headers }
    else
      requests[#requests + 1] = wrk.format(f[1], f[2], headers, body)
    end
  end
  n = #requests
  i = ((tid or 1) - 1) * math.floor(n / 7) % n
end

function request()
  i = i % n + 1
  local r = requests[i]
  if type(r) == "string" then return r end
  count = count + 1
  local u = tid .. "-" .. count
  local headers = {}
  for k, v in pairs(r.headers) do headers[k] = v end
  local path = r.path:gsub("{unique}", u)
  local body = r.body and r.body:gsub("{unique}", u) or nil
  return wrk.format(r.method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
