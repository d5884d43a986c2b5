// Orders: badges, filters (status, dates, customer), search by the platform's order number,
// cursor pagination. Live: a status change refetches the page, so a badge changes in place.
import { useState } from "preact/hooks";

import { api, must } from "../api";
import { money, when } from "../format";
import { Badge, Link, Show, STATUS, useLoad } from "../ui";

function initial(name: string): string {
  return new URLSearchParams(location.search).get(name) ?? "";
}

function searchQuery(search: string): { name?: string; external_id?: string } {
  const wanted = search.trim();
  if (!wanted) return {};
  return /^\d+$/.test(wanted) ? { external_id: wanted } : { name: wanted };
}

/** "2026-11-01" in a date input, as the start of that day in UTC for the API. */
const isoDay = (value: string) => (value ? `${value}T00:00:00Z` : undefined);

export function Orders() {
  const [status, setStatus] = useState(initial("status"));
  const [customer, setCustomer] = useState(initial("customer_id"));
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [search, setSearch] = useState("");
  const [cursors, setCursors] = useState<string[]>([]); // the cursors of the pages behind us
  const cursor = cursors[cursors.length - 1];
  const [page] = useLoad(
    () =>
      must(
        api.GET("/v1/orders", {
          params: {
            query: {
              status: status || undefined,
              customer_id: customer || undefined,
              // "#1042" is the order's name as the store shows it; digits are Shopify's order id.
              ...searchQuery(search),
              created_from: isoDay(from),
              created_to: isoDay(to),
              cursor,
              limit: 25,
            },
          },
        }),
      ),
    [status, customer, from, to, search, cursor],
    (event) => event.type === "order.status_changed",
  );
  const reset = <T,>(set: (value: T) => void) => (value: T) => {
    setCursors([]);
    set(value);
  };
  return (
    <section>
      <h1>Orders</h1>
      <form class="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          Status
          <select name="status" value={status} onChange={(e) => reset(setStatus)(e.currentTarget.value)}>
            <option value="">Any</option>
            {Object.entries(STATUS).map(([value, [icon, label]]) => (
              <option key={value} value={value}>
                {icon} {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="date" name="from" value={from} onChange={(e) => reset(setFrom)(e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="date" name="to" value={to} onChange={(e) => reset(setTo)(e.currentTarget.value)} />
        </label>
        <label>
          Customer id
          <input name="customer_id" value={customer} onInput={(e) => reset(setCustomer)(e.currentTarget.value)} />
        </label>
        <label>
          Order number
          <input
            name="search"
            type="search"
            placeholder="#1042 or Shopify order id"
            value={search}
            onInput={(e) => reset(setSearch)(e.currentTarget.value)}
          />
        </label>
      </form>
      <Show loaded={page} what="the orders">
        {(p) =>
          p.items.length === 0 ? (
            <p class="empty">No orders match these filters.</p>
          ) : (
            <>
              <table class="orders">
                <thead>
                  <tr>
                    <th>Order</th>
                    <th>Status</th>
                    <th>Created</th>
                    <th class="num">Total</th>
                    <th class="num">Cashback</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.map((o) => (
                    <tr key={o.id} data-order={o.external_id}>
                      <td>
                        <Link to={`/orders/${o.id}`}>{o.name ?? o.external_id}</Link>
                      </td>
                      <td>
                        <Badge status={o.status} />
                      </td>
                      <td>{when(o.created_at)}</td>
                      <td class="num">{money(o.total_amount, o.currency)}</td>
                      <td class="num">{money(o.cashback_amount, o.currency)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div class="pager">
                <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                  ← Previous
                </button>
                <button
                  type="button"
                  disabled={!p.next_cursor}
                  onClick={() => p.next_cursor && setCursors([...cursors, p.next_cursor])}
                >
                  Next →
                </button>
              </div>
            </>
          )
        }
      </Show>
    </section>
  );
}
