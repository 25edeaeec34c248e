-- wrk script: send pre-signed requests (benchmarks/requests_file.py) in order, once each.
--
--   wrk -t1 -c32 -d20s --latency -s benchmarks/replay.lua http://127.0.0.1:PORT -- FILE [OFFSET [THREADS]]
--
-- FILE holds, per request, its length in decimal, a newline, then its raw HTTP bytes.
-- With THREADS wrk threads (1 unless given), thread k sends requests k, k + THREADS...
-- so that no request is sent twice. Sending starts at the thread's request OFFSET + 1
-- (0 unless given), so a long run can go on in several wrk runs of one thread. If the requests run out, sending wraps round to the first (a resend
-- is a duplicate for the server: the benchmark sizes files so that it does not happen,
-- and `done` reports how often it did). `done` prints one JSON line, latencies in µs.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local every, mine, index = tonumber(args[3] or "1"), id or 0, 0
  requests, count, wraps = {}, 0, 0
  local position = 1
  while position <= #data do
    local newline = string.find(data, "\n", position, true)
    local size = tonumber(string.sub(data, position, newline - 1))
    if index % every == mine then
      count = count + 1
      requests[count] = string.sub(data, newline + 1, newline + size)
    end
    index = index + 1
    position = newline + size + 1
  end
  sent = tonumber(args[2] or "0") % count
end

function request()
  sent = sent + 1
  if sent > count then
    sent, wraps = 1, wraps + 1
  end
  return requests[sent]
end

function done(summary, latency, requests)
  local wrapped, next_offset = 0, 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + thread:get("wraps")
    next_offset = thread:get("sent")  -- with one thread: where the next run starts
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"wrapped":%d,"next_offset":%d}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean, wrapped,
    next_offset))
end
