-- wrk script for scripts/soak: every request takes the next monitoring route in turn, and each
-- thread counts responses by status so the summary can tell expected 429s from real errors.
local routes = {
  "/metrics/memory/health",
  "/metrics",
  "/metrics/memory/snapshot",
  "/metrics/memory/trend?duration=10m&interval=10s",
  "/metrics/performance",
  "/metrics/memory/leaks",
  "/metrics/memory/allocations",
  "/debug/pprof/heap",
  "/dashboard",
}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  index = 0
end

function request()
  index = index % #routes + 1
  return wrk.format("GET", routes[index])
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local thread_counts = thread:get("counts")
    for status, n in pairs(thread_counts) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format("\"%d\": %d", status, n))
  end
  io.write(string.format(
    "SOAK_WRK {\"requests\": %d, \"duration_us\": %d, \"socket_errors\": {\"connect\": %d, \"read\": %d, " ..
    "\"write\": %d, \"timeout\": %d}, \"statuses\": {%s}, \"latency_p99_us\": %d, \"latency_max_us\": %d}\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, table.concat(parts, ", "), latency:percentile(99), latency.max))
end
