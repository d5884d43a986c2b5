// An order's page: why this amount (per line: rate source, campaigns, exclusions; the gift
// card and store credit part of the payment), its history, the customer's ledger, why it is
// not credited, and the review actions the caller's role allows. Every action sends the
// version it read (If-Match): when someone else acted first, the 409/412 is shown in words and
// the page reloads to the truth.
import { useState } from "preact/hooks";

import { api, intent, must, type Order, ProblemError } from "../api";
import { money, percent, when } from "../format";
import { canReview, useMe } from "../session";
import { Badge, Link, Notice, Show, STATUS, useLoad } from "../ui";
import { lineReason, whyNotCredited } from "../why";

type Outcome = { kind: "ok" | "error" | "info"; text: string } | null;

export function OrderPage({ id }: { id: string }) {
  const [order, reload] = useLoad(
    () => must(api.GET("/v1/orders/{order_id}", { params: { path: { order_id: id } } })),
    [id],
    (event) => event.type === "order.status_changed" && event.order_id === id,
  );
  const [context] = useLoad(
    async () => {
      const [settings, dashboard] = await Promise.allSettled([
        must(api.GET("/v1/shop/settings")),
        must(api.GET("/v1/metrics/dashboard")),
      ]);
      return {
        settings: settings.status === "fulfilled" ? settings.value : null,
        dashboard: dashboard.status === "fulfilled" ? dashboard.value : null,
      };
    },
    [],
  );
  const [outcome, setOutcome] = useState<Outcome>(null);
  return (
    <section class="order">
      <p>
        <Link to="/orders">← Orders</Link>
      </p>
      {outcome && <Notice kind={outcome.kind}>{outcome.text}</Notice>}
      <Show loaded={order} what="the order">
        {(o) => (
          <>
            <h1>
              Order {o.name ?? o.external_id} <Badge status={o.status} />
            </h1>
            <dl class="facts">
              <dt>Total</dt>
              <dd>{money(o.total_amount, o.currency)}</dd>
              <dt>Cashback</dt>
              <dd data-field="cashback_amount">{money(o.cashback_amount, o.currency)}</dd>
              <dt>Credited</dt>
              <dd>{money(o.credited_amount, o.currency)}</dd>
              <dt>Reversed</dt>
              <dd>{money(o.reversed_amount, o.currency)}</dd>
              <dt>Placed</dt>
              <dd>{when(o.created_at)}</dd>
              <dt>Shopify order id</dt>
              <dd>{o.external_id}</dd>
              {o.program_version !== null && (
                <>
                  <dt>Program version</dt>
                  <dd>{o.program_version}</dd>
                </>
              )}
            </dl>
            <Why order={o} context={context.state === "ready" ? context.data : null} />
            <Actions order={o} onDone={(next) => (setOutcome(next), reload())} />
            <Lines order={o} />
            <Payments order={o} />
            <History order={o} />
            {o.customer_id && <CustomerLedger id={o.customer_id} />}
          </>
        )}
      </Show>
    </section>
  );
}

function Why(props: {
  order: Order;
  context: { settings: Parameters<typeof whyNotCredited>[1]; dashboard: Parameters<typeof whyNotCredited>[2] } | null;
}) {
  const why = whyNotCredited(props.order, props.context?.settings ?? null, props.context?.dashboard ?? null);
  if (!why) return null;
  return (
    <aside class="why" data-why={props.order.status}>
      <h2>Why isn't this order credited?</h2>
      <p>
        <strong>{why.title}.</strong> {why.detail}
      </p>
      {why.action && <Link to={why.action.to}>{why.action.label} →</Link>}
    </aside>
  );
}

function Actions({ order, onDone }: { order: Order; onDone: (outcome: Outcome) => void }) {
  const me = useMe();
  const [open, setOpen] = useState<string | null>(null);
  const [amount, setAmount] = useState("");
  const [text, setText] = useState("");
  const [proposed, setProposed] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  if (!canReview(me) || order.allowed_actions.length === 0) {
    return canReview(me) ? null : (
      <p class="muted">Your key is a {me.role} key: you can look, not act.</p>
    );
  }
  const path = { order_id: order.id };
  const header = { "If-Match": `"${order.version}"`, "Idempotency-Key": intent() };
  const act = async (label: string, call: () => Promise<unknown>, done: string) => {
    setBusy(true);
    setProblem(null);
    try {
      await call();
      setOpen(null);
      setProposed(null);
      onDone({ kind: "ok", text: done });
    } catch (exc) {
      const error = exc as ProblemError;
      if (error.problem?.code === "calculation_changed") {
        const now = String(error.problem.calculated_amount ?? "");
        setProposed(now);
        setProblem(`${error.message}. Nothing was credited: confirm the new amount to credit it.`);
      } else if (error.status === 409 || error.status === 412) {
        setOpen(null);
        onDone({
          kind: "error",
          text: `${label} was not applied: ${error.problem.title ?? "someone else acted first"} (${error.message}). The page now shows the order as it is.`,
        });
      } else {
        setProblem(error.message);
      }
    } finally {
      setBusy(false);
    }
  };
  const startProcess = async () => {
    setOpen("process");
    setProblem(null);
    setProposed(null);
    try {
      const preview = await must(api.POST("/v1/orders/{order_id}/process", { params: { path }, body: {} }));
      setProposed(preview.calculated_amount);
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  const button = (name: string, label: string, onClick: () => void) =>
    order.allowed_actions.includes(name as Order["allowed_actions"][number]) && (
      <button type="button" data-action={name} disabled={busy} onClick={onClick}>
        {label}
      </button>
    );
  const toggle = (name: string) => () => {
    setOpen(open === name ? null : name);
    setProblem(null);
    setAmount("");
    setText("");
  };
  return (
    <div class="actions">
      <div class="buttons">
        {button("process", "Process cashback", () => void startProcess())}
        {button("approve", "Approve", toggle("approve"))}
        {button("reject", "Reject", toggle("reject"))}
        {button("hold", "Hold", toggle("hold"))}
        {button("release", "Release", () =>
          void act(
            "Release",
            () => must(api.POST("/v1/orders/{order_id}/release", { params: { path, header } })),
            "Released: the order is back in the queue.",
          ),
        )}
      </div>
      {open === "process" && (
        <div class="dialog" role="dialog" aria-label="Process cashback">
          {proposed === null && !problem && <p class="loading">Calculating the amount…</p>}
          {proposed !== null && (
            <p>
              Credit <strong data-field="proposed">{money(proposed, order.currency)}</strong> to the customer now?
            </p>
          )}
          {problem && <Notice kind="error">{problem}</Notice>}
          <button
            type="button"
            data-confirm="process"
            disabled={busy || proposed === null}
            onClick={() =>
              void act(
                "Process cashback",
                () =>
                  must(
                    api.POST("/v1/orders/{order_id}/process", {
                      params: { path, header },
                      body: { expected_amount: proposed },
                    }),
                  ),
                `Credited ${money(proposed, order.currency)}.`,
              )
            }
          >
            Confirm {proposed !== null ? money(proposed, order.currency) : ""}
          </button>
          <button type="button" class="link" onClick={() => setOpen(null)}>
            Cancel
          </button>
        </div>
      )}
      {open === "approve" && (
        <form
          class="dialog"
          aria-label="Approve"
          onSubmit={(event) => {
            event.preventDefault();
            void act(
              "Approve",
              () =>
                must(
                  api.POST("/v1/orders/{order_id}/approve", {
                    params: { path, header },
                    body: { amount: amount.trim() || null, note: text.trim() || null },
                  }),
                ),
              "Approved.",
            );
          }}
        >
          <p>Approve {money(order.cashback_amount, order.currency)}, or an adjusted amount with a note.</p>
          <label>
            Adjusted amount ({order.currency})
            <input name="amount" inputMode="decimal" placeholder={order.cashback_amount} value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
          </label>
          <label>
            Note
            <input name="note" value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          {problem && <Notice kind="error">{problem}</Notice>}
          <button type="submit" data-confirm="approve" disabled={busy}>
            Approve
          </button>
        </form>
      )}
      {(open === "reject" || open === "hold") && (
        <form
          class="dialog"
          aria-label={open === "reject" ? "Reject" : "Hold"}
          onSubmit={(event) => {
            event.preventDefault();
            if (!text.trim()) {
              setProblem("Say why: a reason is required.");
              return;
            }
            const which = open;
            void act(
              which === "reject" ? "Reject" : "Hold",
              () =>
                must(
                  which === "reject"
                    ? api.POST("/v1/orders/{order_id}/reject", { params: { path, header }, body: { reason: text.trim() } })
                    : api.POST("/v1/orders/{order_id}/hold", { params: { path, header }, body: { reason: text.trim() } }),
                ),
              which === "reject" ? "Rejected." : "Held.",
            );
          }}
        >
          <label>
            Reason (required)
            <input name="reason" value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          {problem && <Notice kind="error">{problem}</Notice>}
          <button type="submit" data-confirm={open} disabled={busy}>
            {open === "reject" ? "Reject" : "Hold"}
          </button>
        </form>
      )}
    </div>
  );
}

function Lines({ order }: { order: Order }) {
  if (order.lines.length === 0) return <p class="empty">This order has no line items.</p>;
  return (
    <>
      <h2>Why this amount</h2>
      <table class="lines">
        <thead>
          <tr>
            <th>Item</th>
            <th>Qty</th>
            <th class="num">Eligible</th>
            <th>Rate</th>
            <th class="num">Cashback</th>
            <th>Why</th>
          </tr>
        </thead>
        <tbody>
          {order.lines.map((line) => (
            <tr key={line.external_id}>
              <td>
                {line.title}
                {line.sku && <span class="muted"> · {line.sku}</span>}
                {line.gift_card && <span class="muted"> · gift card</span>}
              </td>
              <td>{line.quantity}</td>
              <td class="num">{money(line.eligible_amount, order.currency)}</td>
              <td>
                {percent(line.rate)} <span class="muted">({line.rate_source})</span>
              </td>
              <td class="num">{money(line.cashback_amount, order.currency)}</td>
              <td>
                {[
                  Number(line.discount_amount) > 0 ? `discount ${money(line.discount_amount, order.currency)}` : "",
                  line.campaigns.length ? `campaign ${line.campaigns.join(", ")}` : "",
                  lineReason(line.reason, line.rate_source) ?? "",
                ]
                  .filter(Boolean)
                  .join("; ") || "—"}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

const PAYMENT_STATE: Record<Order["payments"]["status"], string> = {
  none: "Paid without gift cards or store credit.",
  read: "Read from Shopify's transactions.",
  payload: "Read from the order as Shopify sent it.",
  waiting: "Still being read from Shopify.",
  needs_review: "Could not be read: a reviewer decides.",
};

function Payments({ order }: { order: Order }) {
  const p = order.payments;
  return (
    <div class="payments" data-payments={p.status}>
      <h2>Paid with gift cards and store credit</h2>
      <p>{PAYMENT_STATE[p.status]}</p>
      {(p.gift_card_amount || p.store_credit_amount) && (
        <ul>
          {p.gift_card_amount && <li>Gift cards: {money(p.gift_card_amount, p.currency)}</li>}
          {p.store_credit_amount && <li>Store credit: {money(p.store_credit_amount, p.currency)}</li>}
          {p.paid_with_credit_amount && <li>Not earning cashback: {money(p.paid_with_credit_amount, p.currency)}</li>}
        </ul>
      )}
    </div>
  );
}

function History({ order }: { order: Order }) {
  return (
    <>
      <h2>History</h2>
      {order.history.length === 0 ? (
        <p class="empty">Nothing has happened to this order yet.</p>
      ) : (
        <ol class="history">
          {order.history.map((event, i) => (
            <li key={i}>
              <time>{when(event.at)}</time> {event.action}
              {event.to_status && (
                <>
                  {" "}→ {STATUS[event.to_status][1]}
                </>
              )}
              {event.reason && <> — {event.reason}</>} <span class="muted">by {event.actor}</span>
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

function CustomerLedger({ id }: { id: string }) {
  const [data] = useLoad(
    async () => {
      const path = { customer_id: id };
      const [customer, ledger] = await Promise.all([
        must(api.GET("/v1/customers/{customer_id}", { params: { path } })),
        must(api.GET("/v1/customers/{customer_id}/ledger", { params: { path, query: { limit: 20 } } })),
      ]);
      return { customer, ledger };
    },
    [id],
  );
  return (
    <>
      <h2>Customer's ledger</h2>
      <Show loaded={data} what="the customer's ledger">
        {({ customer, ledger }) => (
          <>
            <p>
              {[customer.first_name, customer.last_name].filter(Boolean).join(" ") || customer.email || customer.external_id}:
              balance {money(customer.balance, customer.currency)}
            </p>
            {ledger.items.length === 0 ? (
              <p class="empty">No credit or reversal yet.</p>
            ) : (
              <table>
                <tbody>
                  {ledger.items.map((entry) => (
                    <tr key={entry.id}>
                      <td>{when(entry.created_at)}</td>
                      <td>{entry.kind}</td>
                      <td class="num">{money(entry.amount, entry.currency)}</td>
                      <td>{entry.description ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Show>
    </>
  );
}
