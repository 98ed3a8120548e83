-- wrk script for scripts/ingest_load.sh: POSTs one pre-generated batch of events to
-- /api/v1/metrics/events on every request and counts the answers by status.
--
-- Environment (set by ingest_load.sh):
--   INGEST_BODY_FILE  path of the JSON batch to send
--   INGEST_TOKEN      bearer token with the ingest scope
--
-- At the end it prints one line the shell script parses:
--   ingest-status: requests=N accepted=N non202=N statuses=202:N,422:N
-- and, when some answers were not 202, the first such answer's status and body.

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local data = f:read("*a")
  f:close()
  return data
end

local body_file = os.getenv("INGEST_BODY_FILE")
local token = os.getenv("INGEST_TOKEN")
if not body_file or not token then
  io.stderr:write("ingest_batch.lua: set INGEST_BODY_FILE and INGEST_TOKEN\n")
  os.exit(2)
end

-- Set once, so wrk builds the request a single time and reuses it.
wrk.method = "POST"
wrk.body = read_file(body_file)
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

-- Each wrk thread has its own Lua state: keep the counts per thread, add them up in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- These globals live in each thread's own state.
statuses = {}
first_bad = nil

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 202 and first_bad == nil then
    first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
  end
end

function done(summary, latency, requests)
  local totals, seen, bad = {}, 0, nil
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses") or {}
    for status, n in pairs(counts) do
      totals[status] = (totals[status] or 0) + n
      seen = seen + n
    end
    bad = bad or thread:get("first_bad")
  end
  local keys = {}
  for status in pairs(totals) do table.insert(keys, status) end
  table.sort(keys)
  local parts = {}
  for _, status in ipairs(keys) do
    table.insert(parts, status .. ":" .. totals[status])
  end
  local accepted = totals[202] or 0
  io.write(string.format("ingest-status: requests=%d accepted=%d non202=%d statuses=%s\n",
    seen, accepted, seen - accepted, #parts > 0 and table.concat(parts, ",") or "none"))
  if bad then
    io.write("ingest-first-non202: " .. string.gsub(bad, "\n", " ") .. "\n")
  end
end
