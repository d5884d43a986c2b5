// Dashboard: the seed's four figures first (processed today, cashback issued today and in
// total, pending queue, failed), then the rest, a 30-day chart and the top customers. Live:
// `dashboard.updated` refetches the figures.
import { api, must, prefetch, type Schemas, takeEarly } from "../api";
import { day, duration, money, shopDate } from "../format";
import type { LiveEvent } from "../live";
import { Figure, Link, Show, useLoad } from "../ui";

const dashboardChanged = (event: LiveEvent) =>
  event.type === "dashboard.updated" || event.type === "order.status_changed";

export const loadFigures = () => must(api.GET("/v1/metrics/dashboard"));
export const loadDaily = () =>
  must(api.GET("/v1/metrics/daily", { params: { query: { from: shopDate(29), to: shopDate() } } }));
export const loadTop = () =>
  must(api.GET("/v1/metrics/top-customers", { params: { query: { limit: 5 } } }));

/** Started at boot, beside GET /v1/me, when the console opens on the dashboard. (Not the
 * daily figures: their days are the shop's, whose timezone GET /v1/me tells.) */
export function prefetchDashboard(): void {
  prefetch("dashboard", loadFigures);
  prefetch("top", loadTop);
}

export function Dashboard() {
  const [figures] = useLoad(() => takeEarly("dashboard", loadFigures), [], dashboardChanged);
  const [daily] = useLoad(loadDaily, [], dashboardChanged);
  const [top] = useLoad(() => takeEarly("top", loadTop), [], dashboardChanged);
  return (
    <section class="dashboard">
      <h1>Dashboard</h1>
      <Show loaded={figures} what="the dashboard figures">
        {(d) => <Figures d={d} />}
      </Show>
      <h2>Last 30 days</h2>
      <Show loaded={daily} what="the daily figures">
        {(rows) => <Chart rows={rows} />}
      </Show>
      <h2>Top customers</h2>
      <Show loaded={top} what="the top customers">
        {(t) =>
          t.items.length === 0 ? (
            <p class="empty">No customer has earned cashback yet.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Customer</th>
                  <th>Orders</th>
                  <th class="num">Cashback issued</th>
                </tr>
              </thead>
              <tbody>
                {t.items.map((c) => (
                  <tr key={c.customer_id}>
                    <td>
                      <Link to={`/orders?customer_id=${c.customer_id}`}>{c.external_id}</Link>
                    </td>
                    <td>{c.orders}</td>
                    <td class="num">{money(c.cashback_issued, t.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </section>
  );
}

function Figures({ d }: { d: Schemas["Dashboard"] }) {
  const c = d.currency;
  const latency = (ms: number | null) => (ms === null ? "—" : duration(ms / 1000));
  return (
    <>
      <div class="figures headline" data-ready="true">
        <Figure name="processed_today" label="Orders processed today" value={d.processed_today} />
        <Figure
          name="cashback_issued_today"
          label={`Cashback issued today (total ${money(d.cashback_issued_total, c)})`}
          value={money(d.cashback_issued_today, c)}
        />
        <Figure
          name="pending_count"
          label={`Pending queue${d.oldest_pending_seconds !== null ? ` (oldest ${duration(d.oldest_pending_seconds)})` : ""}`}
          value={<Link to="/review">{d.pending_count}</Link>}
        />
        <Figure
          name="failed_count"
          label="Failed processing"
          value={<Link to="/orders?status=failed">{d.failed_count}</Link>}
        />
      </div>
      <div class="figures">
        <Figure name="cashback_issued_total" label="Cashback issued in total" value={money(d.cashback_issued_total, c)} />
        <Figure name="held_count" label="Held" value={d.held_count} />
        <Figure name="awaiting_customer_count" label="Awaiting customer" value={d.awaiting_customer_count} />
        <Figure name="reversed_today" label="Reversed today" value={money(d.reversed_today, c)} />
        <Figure name="scheduled_amount" label="Scheduled to credit" value={money(d.scheduled_amount, c)} />
        <Figure
          name="approval_time"
          label="Approval time (median / p90)"
          value={`${duration(d.approval_time_median_seconds)} / ${duration(d.approval_time_p90_seconds)}`}
        />
        <Figure
          name="latency"
          label="Paid → credit (p50 / p95)"
          value={`${latency(d.processing_latency_p50_ms)} / ${latency(d.processing_latency_p95_ms)}`}
        />
        <Figure name="sync_failures" label="Sync failures" value={d.sync_failures} />
      </div>
    </>
  );
}

/** Cashback issued per day as bars (inline SVG), orders processed as the bar's title. */
function Chart({ rows }: { rows: Schemas["DailyFigures"] }) {
  const values = rows.days.map((r) => Number(r.cashback_issued)); // drawing only, not money
  const highest = Math.max(0, ...values);
  if (rows.days.length === 0 || highest === 0)
    return <p class="empty">No cashback issued in the last 30 days.</p>;
  const width = 600;
  const height = 120;
  const bar = width / rows.days.length;
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${height + 16}`} role="img" aria-label="Cashback issued per day">
      {rows.days.map((r, i) => {
        const h = ((values[i] ?? 0) / highest) * height;
        return (
          <g key={r.day}>
            <title>
              {day(r.day)}: {money(r.cashback_issued, rows.currency)}, {r.processed} processed
            </title>
            <rect x={i * bar + 1} y={height - h} width={Math.max(bar - 2, 1)} height={h} />
          </g>
        );
      })}
      <text x="0" y={height + 14}>
        {rows.days[0] ? day(rows.days[0].day) : ""}
      </text>
      <text x={width} y={height + 14} text-anchor="end">
        {day(rows.days[rows.days.length - 1]?.day ?? "")}
      </text>
    </svg>
  );
}
