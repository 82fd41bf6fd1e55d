-- wrk script: walk a pre-generated file of raw, signed, unique HTTP requests.
--
--   wrk ... -s requests.lua URL -- FILE OFF_0 OFF_1 ... OFF_T
--
-- FILE holds the requests back to back, each followed by the byte 0x1E. Thread i sends the
-- requests between byte offsets OFF_i and OFF_(i+1), in order, each exactly once. When a thread
-- has used up its slice it sends "GET /__exhausted" instead (404 on both servers), counted as
-- "exhausted", so a too-small file shows up in the results instead of as duplicates.
--
-- done() prints one line "BENCHJSON {...}" with the totals, the status mix and the latency
-- percentiles (microseconds), which run.py parses.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

-- per-thread globals (thread:get reads globals): data, pos, sent, exhausted, statuses
local SEP = "\30"
local EXHAUSTED = "GET /__exhausted HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

function init(args)
   local path = args[1]
   local first = tonumber(args[2 + tid])
   local last = tonumber(args[3 + tid])
   local f = assert(io.open(path, "rb"))
   f:seek("set", first)
   data = f:read(last - first) or ""
   f:close()
   pos = 1
   sent = 0
   exhausted = 0
   statuses = {}
end

function request()
   local stop = string.find(data, SEP, pos, true)
   if stop == nil then
      exhausted = exhausted + 1
      return EXHAUSTED
   end
   local req = string.sub(data, pos, stop - 1)
   pos = stop + 1
   sent = sent + 1
   return req
end

function response(status, headers, body)
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
   local sent_total, exhausted_total, mix = 0, 0, {}
   for _, thread in ipairs(threads) do
      sent_total = sent_total + thread:get("sent")
      exhausted_total = exhausted_total + thread:get("exhausted")
      for code, n in pairs(thread:get("statuses")) do
         mix[code] = (mix[code] or 0) + n
      end
   end
   local parts = {}
   for code, n in pairs(mix) do
      table.insert(parts, string.format('"%s":%d', code, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"duration_us":%d,"requests":%d,"bytes":%d,"sent":%d,"exhausted":%d,' ..
      '"statuses":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.duration, summary.requests, summary.bytes, sent_total, exhausted_total,
      table.concat(parts, ","), e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
