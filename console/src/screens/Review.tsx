// Review queue: pending and held orders, oldest first, with hold reasons, waiting time, the
// review deadline and the customer's history. Bulk approve and reject answer per order.
// Keyboard: j / k move, x selects, a approves and r rejects the selection (or the current
// order when nothing is selected).
import { useLayoutEffect, useRef, useState } from "preact/hooks";

import { api, intent, must, type OrderSummary, type Schemas } from "../api";
import { money, since, when } from "../format";
import { canReview, useMe } from "../session";
import { Badge, Link, Notice, Show, useLoad } from "../ui";

type Result = Schemas["BulkItemResult"];

export function Review() {
  const me = useMe();
  const [queue, reload] = useLoad(
    async () => {
      const [page, settings] = await Promise.all([
        must(api.GET("/v1/orders", { params: { query: { status: "pending,held", sort: "created_at", limit: 100 } } })),
        must(api.GET("/v1/shop/settings")),
      ]);
      return { items: page.items, more: page.next_cursor !== null, deadlineHours: settings.review_deadline_hours };
    },
    [],
    (event) => event.type === "order.status_changed",
  );
  const [current, setCurrent] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [results, setResults] = useState<Map<string, Result>>(new Map());
  const [rejecting, setRejecting] = useState(false);
  const [reason, setReason] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const reasonInput = useRef<HTMLInputElement>(null);
  const items = queue.state === "ready" ? queue.data.items : [];
  const reviewer = canReview(me);

  // What the keys act on, as rendered now: read through a ref, so a key pressed right after
  // a move acts on the row the screen highlights (never on a closure's older state).
  const now = useRef({ items, current, selected });
  now.current = { items, current, selected };
  const targets = (): string[] => {
    const { items: shown, current: at, selected: picked } = now.current;
    if (picked.size) return [...picked];
    const order = shown[at];
    return order ? [order.id] : [];
  };
  const finish = (answer: Schemas["BulkResult"]) => {
    setResults(new Map(answer.results.map((r) => [r.id, r])));
    setSelected(new Set());
    reload();
  };
  const approve = async () => {
    const ids = targets();
    if (!ids.length) return;
    setProblem(null);
    try {
      finish(await must(api.POST("/v1/orders/bulk-approve", { params: { header: { "Idempotency-Key": intent() } }, body: { ids } })));
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  const reject = async () => {
    const ids = targets();
    if (!ids.length) return;
    if (!reason.trim()) {
      setProblem("Say why: a reason is required to reject.");
      return;
    }
    setProblem(null);
    try {
      finish(
        await must(
          api.POST("/v1/orders/bulk-reject", {
            params: { header: { "Idempotency-Key": intent() } },
            body: { ids, reason: reason.trim() },
          }),
        ),
      );
      setRejecting(false);
      setReason("");
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };

  useLayoutEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return;
      if (event.metaKey || event.ctrlKey || event.altKey) return;
      const { items: shown, current: at } = now.current;
      if (event.key === "j") setCurrent((i) => Math.min(i + 1, Math.max(shown.length - 1, 0)));
      else if (event.key === "k") setCurrent((i) => Math.max(i - 1, 0));
      else if (event.key === "x") {
        const order = shown[at];
        if (order) toggle(order.id);
      } else if (reviewer && event.key === "a") void approve();
      else if (reviewer && event.key === "r") {
        setRejecting(true);
        setTimeout(() => reasonInput.current?.focus(), 0);
      } else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };

  return (
    <section class="review">
      <h1>Review queue</h1>
      <p class="muted">
        Oldest first. Keys: <kbd>j</kbd>/<kbd>k</kbd> move, <kbd>x</kbd> select
        {reviewer && (
          <>
            , <kbd>a</kbd> approve, <kbd>r</kbd> reject
          </>
        )}
        .
      </p>
      {problem && <Notice kind="error">{problem}</Notice>}
      {results.size > 0 && (
        <ul class="results" aria-label="Results">
          {[...results.values()].map((r) => (
            <li key={r.id} data-result={r.ok ? "ok" : "failed"}>
              Order {r.id}: {r.ok ? `done (${r.status})` : `not changed — ${r.detail ?? r.code}`}
            </li>
          ))}
        </ul>
      )}
      {reviewer && (
        <div class="buttons">
          <button type="button" data-bulk="approve" onClick={() => void approve()} disabled={!items.length}>
            Approve {selected.size ? `${selected.size} selected` : "current"}
          </button>
          <button type="button" data-bulk="reject" onClick={() => setRejecting(!rejecting)} disabled={!items.length}>
            Reject {selected.size ? `${selected.size} selected` : "current"}
          </button>
        </div>
      )}
      {rejecting && (
        <form
          class="dialog"
          onSubmit={(event) => {
            event.preventDefault();
            void reject();
          }}
        >
          <label>
            Reason (required)
            <input ref={reasonInput} name="reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="submit" data-confirm="reject">
            Reject
          </button>
        </form>
      )}
      <Show loaded={queue} what="the review queue">
        {(q) =>
          q.items.length === 0 ? (
            <p class="empty">Nothing waits for review. New pending and held orders appear here.</p>
          ) : (
            <table class="queue">
              <thead>
                <tr>
                  <th />
                  <th>Order</th>
                  <th>Status</th>
                  <th class="num">Cashback</th>
                  <th>Waiting</th>
                  <th>Why it waits</th>
                  <th>Customer</th>
                </tr>
              </thead>
              <tbody>
                {q.items.map((o, i) => (
                  <Row
                    key={o.id}
                    order={o}
                    current={i === current}
                    selected={selected.has(o.id)}
                    deadlineHours={q.deadlineHours}
                    onSelect={() => toggle(o.id)}
                    onFocus={() => setCurrent(i)}
                  />
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </section>
  );
}

function Row(props: {
  order: OrderSummary;
  current: boolean;
  selected: boolean;
  deadlineHours: number | null;
  onSelect: () => void;
  onFocus: () => void;
}) {
  const o = props.order;
  const started = o.review_started_at ?? o.created_at;
  const deadline =
    props.deadlineHours !== null ? new Date(new Date(started).getTime() + props.deadlineHours * 3600_000) : null;
  const late = deadline !== null && deadline.getTime() < Date.now();
  const h = o.customer_history;
  return (
    <tr class={props.current ? "current" : ""} data-order={o.external_id} aria-current={props.current} onClick={props.onFocus}>
      <td>
        <input type="checkbox" aria-label={`Select ${o.name ?? o.external_id}`} checked={props.selected} onChange={props.onSelect} />
      </td>
      <td>
        <Link to={`/orders/${o.id}`}>{o.name ?? o.external_id}</Link>
      </td>
      <td>
        <Badge status={o.status} />
      </td>
      <td class="num">{money(o.cashback_amount, o.currency)}</td>
      <td>
        {since(started)}
        {deadline && (
          <div class={late ? "late" : "muted"}>
            {late ? "past the review deadline" : `review by ${when(deadline.toISOString())}`}
          </div>
        )}
      </td>
      <td>{o.hold_reasons.join("; ") || o.status_reason || "waiting for a reviewer"}</td>
      <td>
        {h ? (
          <>
            {h.orders} orders, {money(h.credited_amount, o.currency)} credited
            {h.reversed_amount !== "0" && Number(h.reversed_amount) > 0 && <>, {money(h.reversed_amount, o.currency)} reversed</>}
            {h.account_problem && <div class="late">{h.account_problem}</div>}
          </>
        ) : (
          "no account yet"
        )}
      </td>
    </tr>
  );
}
