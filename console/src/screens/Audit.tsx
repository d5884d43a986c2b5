// Audit log: who did what, filtered by date, actor, action and order; CSV export of every
// matching event (the same endpoint with Accept: text/csv).
import { useState } from "preact/hooks";

import { api, must, type Schemas } from "../api";
import { when } from "../format";
import { Notice, Show, useLoad } from "../ui";

const isoDay = (value: string) => (value ? `${value}T00:00:00Z` : undefined);

export function Audit() {
  const [filters, setFilters] = useState({ from: "", to: "", actor: "", action: "", order: "" });
  const [cursors, setCursors] = useState<string[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const query = {
    date_from: isoDay(filters.from),
    date_to: isoDay(filters.to),
    actor: filters.actor.trim() || undefined,
    action: filters.action.trim() || undefined,
    order_id: filters.order.trim() || undefined,
  };
  const cursor = cursors[cursors.length - 1];
  const [page] = useLoad(
    async () =>
      (await must(api.GET("/v1/audit-events", { params: { query: { ...query, cursor, limit: 50 } } }))) as Schemas["AuditEventList"],
    [JSON.stringify(query), cursor],
  );
  const set = (key: keyof typeof filters) => (event: { currentTarget: HTMLInputElement }) => {
    setCursors([]);
    setFilters({ ...filters, [key]: event.currentTarget.value });
  };
  const exportCsv = async () => {
    setProblem(null);
    try {
      const csv = await must(
        api.GET("/v1/audit-events", { params: { query }, headers: { Accept: "text/csv" }, parseAs: "blob" }),
      );
      const link = document.createElement("a");
      link.href = URL.createObjectURL(csv as Blob);
      link.download = "audit-log.csv";
      link.click();
      URL.revokeObjectURL(link.href);
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  return (
    <section class="audit">
      <h1>Audit log</h1>
      <form class="filters" onSubmit={(event) => event.preventDefault()}>
        <label>
          From <input type="date" name="from" value={filters.from} onChange={set("from")} />
        </label>
        <label>
          To <input type="date" name="to" value={filters.to} onChange={set("to")} />
        </label>
        <label>
          Actor <input name="actor" value={filters.actor} onChange={set("actor")} />
        </label>
        <label>
          Action <input name="action" placeholder="order.approved" value={filters.action} onChange={set("action")} />
        </label>
        <label>
          Order id <input name="order_id" value={filters.order} onChange={set("order")} />
        </label>
        <button type="button" onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </form>
      {problem && <Notice kind="error">{problem}</Notice>}
      <Show loaded={page} what="the audit log">
        {(p) =>
          p.items.length === 0 ? (
            <p class="empty">No audit events match these filters.</p>
          ) : (
            <>
              <table class="events">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Who</th>
                    <th>What</th>
                    <th>Subject</th>
                    <th>Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.map((e) => (
                    <tr key={e.id} data-action={e.action}>
                      <td>{when(e.at)}</td>
                      <td>{e.actor}</td>
                      <td>{e.action}</td>
                      <td>
                        {e.subject_type} {e.subject_id}
                      </td>
                      <td>{e.reason ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div class="pager">
                <button type="button" disabled={!cursors.length} onClick={() => setCursors(cursors.slice(0, -1))}>
                  ← Newer
                </button>
                <button type="button" disabled={!p.next_cursor} onClick={() => p.next_cursor && setCursors([...cursors, p.next_cursor])}>
                  Older →
                </button>
              </div>
            </>
          )
        }
      </Show>
    </section>
  );
}
