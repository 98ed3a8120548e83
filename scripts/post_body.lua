-- wrk script for scripts/otlp_load.sh: POSTs one pre-encoded body on every request and
-- counts the answers by status.
--
-- Environment:
--   POST_BODY_FILE     path of the body to send (sent as is, e.g. OTLP protobuf)
--   POST_TOKEN         bearer token
--   POST_CONTENT_TYPE  Content-Type of the body (default application/x-protobuf)
--   POST_OK_STATUS     the status that means accepted (default 200)
--
-- At the end it prints one line the shell script parses:
--   post-status: requests=N accepted=N other=N statuses=200:N,400:N
-- and, when some answers were not accepted, the first such answer's status and body size.

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local data = f:read("*a")
  f:close()
  return data
end

local body_file = os.getenv("POST_BODY_FILE")
local token = os.getenv("POST_TOKEN")
if not body_file or not token then
  io.stderr:write("post_body.lua: set POST_BODY_FILE and POST_TOKEN\n")
  os.exit(2)
end
local ok_status = tonumber(os.getenv("POST_OK_STATUS") or "200")

-- Set once, so wrk builds the request a single time and reuses it.
wrk.method = "POST"
wrk.body = read_file(body_file)
wrk.headers["Content-Type"] = os.getenv("POST_CONTENT_TYPE") or "application/x-protobuf"
wrk.headers["Authorization"] = "Bearer " .. token

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

statuses = {}
first_bad = nil

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= ok_status and first_bad == nil then
    first_bad = tostring(status) .. " (" .. tostring(#(body or "")) .. " bytes)"
  end
end

function done(summary, latency, requests)
  local totals, seen, bad = {}, 0, nil
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + n
      seen = seen + n
    end
    bad = bad or thread:get("first_bad")
  end
  local keys, parts = {}, {}
  for status in pairs(totals) do table.insert(keys, status) end
  table.sort(keys)
  for _, status in ipairs(keys) do table.insert(parts, status .. ":" .. totals[status]) end
  local accepted = totals[ok_status] or 0
  io.write(string.format("post-status: requests=%d accepted=%d other=%d statuses=%s\n",
    seen, accepted, seen - accepted, #parts > 0 and table.concat(parts, ",") or "none"))
  if bad then io.write("post-first-bad: " .. bad .. "\n") end
end
