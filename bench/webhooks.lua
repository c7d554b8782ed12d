-- wrk script for bench/webhooks.py: sends pre-signed GitHub deliveries (wrk's Lua cannot
-- compute an HMAC, so the benchmark writes them signed, one a line: delivery id, event,
-- signature, body, separated by tabs).
--
-- Arguments: the requests file, the number of wrk threads, a directory. Thread i sends lines
-- i, i + threads, ... in order, once each; a connection with nothing left to send stays idle.
-- With WEBHOOKS_RATE_PER_THREAD set in the environment, the thread's n-th request is due
-- n / rate seconds after its first, sent then on the first of its connections to be free (wrk
-- asks delay() before each request, if the script has one; latency counts from the send).
-- When a thread has all its answers it writes "done-i" in the directory (the benchmark then
-- stops wrk with SIGINT). done() prints one JSON line: answers by status, latency percentiles
-- (wrk's histogram), and the seconds from the first request sent to the last answer read.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]])
local timeval = ffi.new("bench_timeval")

local function now()
  ffi.C.gettimeofday(timeval, nil)
  return tonumber(timeval.tv_sec) + tonumber(timeval.tv_usec) / 1e6
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local path, stride = args[1], tonumber(args[2])
  done_directory = args[3]
  pending = {}
  local line_number = 0
  for line in io.lines(path) do
    if line_number % stride == index then
      local delivery_id, event, signature, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      pending[#pending + 1] = wrk.format("POST", "/webhooks/github", {
        ["Content-Type"] = "application/json",
        ["X-GitHub-Event"] = event,
        ["X-GitHub-Delivery"] = delivery_id,
        ["X-Hub-Signature-256"] = signature,
      }, body)
    end
    line_number = line_number + 1
  end
  sent, answered, answers = 0, 0, {}
  -- wrk calls the first thread's request() once before the run, to check it: not a send.
  checking = index == 0
end

function request()
  if checking then
    checking = false
    return pending[1] or ""
  end
  if sent == 0 then
    first_sent = now()
  end
  if sent == #pending then
    return ""
  end
  sent = sent + 1
  return pending[sent]
end

local rate = tonumber(os.getenv("WEBHOOKS_RATE_PER_THREAD") or "")
if rate then
  local scheduled, paced_from = 0, nil
  function delay()
    if scheduled == 0 then
      paced_from = now()
    end
    local due = paced_from + scheduled / rate
    scheduled = scheduled + 1
    return math.max(0, math.floor((due - now()) * 1000))
  end
end

function response(status, headers, body)
  local word = body:match('"status": "(%a+)"') or ""
  local key = status .. " " .. word
  answers[key] = (answers[key] or 0) + 1
  answered = answered + 1
  if answered == #pending then
    last_answered = now()
    io.open(done_directory .. "/done-" .. index, "w"):close()
  end
end

function done(summary, latency, requests)
  local totals, first, last = {}, nil, nil
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("answers")) do
      totals[key] = (totals[key] or 0) + count
    end
    local started, finished = thread:get("first_sent"), thread:get("last_answered")
    if started and (first == nil or started < first) then first = started end
    if finished and (last == nil or finished > last) then last = finished end
  end
  local parts = {}
  for key, count in pairs(totals) do
    parts[#parts + 1] = string.format('"%s": %d', key, count)
  end
  local errors = summary.errors
  io.write(string.format(
    '{"answers": {%s}, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status >= 400": %d}}\n',
    table.concat(parts, ", "),
    (last or 0) - (first or 0),
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status
  ))
end
