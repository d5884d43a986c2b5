-- wrk script for the intake phase of `python -m bench`.
-- Environment: BENCH_POOL (pool file: records "<signature>\n<body>\0"), BENCH_DOMAIN (shop
-- domain), BENCH_WRK_OUT (where done() writes its JSON summary), BENCH_RUN (event id prefix).
-- Every request gets a fresh X-Shopify-Event-Id, so each one is a new event for the API; the
-- answers whose body says "accepted" are counted (the bench checks each was stored).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_no", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(os.getenv("BENCH_POOL"), "rb"))
  local data = file:read("*a")
  file:close()
  sigs, bodies = {}, {}
  local pos = 1
  while true do
    local stop = string.find(data, "\0", pos, true)
    if not stop then break end
    local nl = string.find(data, "\n", pos, true)
    sigs[#sigs + 1] = string.sub(data, pos, nl - 1)
    bodies[#bodies + 1] = string.sub(data, nl + 1, stop - 1)
    pos = stop + 1
  end
  pool_size = #bodies
  -- Threads start at different places of the pool so they send different orders.
  cursor = math.floor(thread_no * pool_size / 8) % pool_size
  sent = 0
  accepted = 0  -- 2xx answers whose body says the event was accepted (stored, not a duplicate)
  run = os.getenv("BENCH_RUN") or "wrk"  -- event ids stay unique across runs on one database
  headers = {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = "orders/paid",
    ["X-Shopify-Shop-Domain"] = os.getenv("BENCH_DOMAIN"),
    ["X-Shopify-Api-Version"] = "2025-01",
  }
end

function request()
  cursor = cursor % pool_size + 1
  sent = sent + 1
  local event_id = run .. "-" .. thread_no .. "-" .. sent
  headers["X-Shopify-Hmac-Sha256"] = sigs[cursor]
  headers["X-Shopify-Event-Id"] = event_id
  headers["X-Shopify-Webhook-Id"] = event_id
  return wrk.format("POST", nil, headers, bodies[cursor])
end

function response(status, headers, body)
  if status >= 200 and status < 300 and string.find(body, '"accepted"', 1, true) then
    accepted = accepted + 1
  end
end

function done(summary, latency, requests)
  local sent_total, accepted_total, pool = 0, 0, 0
  for _, thread in ipairs(threads) do
    sent_total = sent_total + (thread:get("sent") or 0)
    accepted_total = accepted_total + (thread:get("accepted") or 0)
    pool = thread:get("pool_size") or pool
  end
  local out = assert(io.open(os.getenv("BENCH_WRK_OUT"), "w"))
  out:write(string.format(
    '{"completed": %.0f, "sent": %.0f, "accepted": %.0f, "pool_size": %.0f, "duration_us": %.0f, ' ..
    '"non2xx": %.0f, "connect_errors": %.0f, "read_errors": %.0f, "write_errors": %.0f, ' ..
    '"timeouts": %.0f, "p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f, ' ..
    '"mean_us": %.1f}\n',
    summary.requests, sent_total, accepted_total, pool, summary.duration,
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
  out:close()
end
