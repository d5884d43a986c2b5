// Program: the draft is edited here and only stored on Save (PUT /v1/program, If-Match the
// version read); validation errors appear beside their fields. Before saving: preview an order
// under the draft, and what-if over a date range. Versions come from the audit log.
import { useEffect, useState } from "preact/hooks";

import { api, intent, must, ProblemError, type Schemas } from "../api";
import { money, when } from "../format";
import { isAdmin, useMe } from "../session";
import { Notice, Show, useLoad } from "../ui";

type Program = Schemas["Program"];
type Errors = Record<string, string>;

const TEXT_FIELDS: [keyof Program, string][] = [
  ["base_rate", "Base rate (percent)"],
  ["b2b_rate", "B2B rate (percent)"],
  ["minimum_eligible_amount", "Minimum eligible amount"],
  ["maximum_cashback_per_order", "Cap per order"],
];
const FLAGS: [keyof Program, string][] = [
  ["include_shipping", "Shipping earns cashback"],
  ["include_tax", "Tax earns cashback"],
  ["subtract_discounts", "Discounts are subtracted"],
  ["exclude_test_orders", "Test orders earn nothing"],
  ["exclude_credit_payments", "The part paid by gift cards or store credit earns nothing"],
];
const LISTS: [keyof Program, string][] = [
  ["rules", "Rules and exclusions (JSON list)"],
  ["tiers", "Tiers (JSON list)"],
  ["campaigns", "Campaigns (JSON list)"],
];

function withoutVersion(read: Schemas["ProgramRead"]): Program {
  const { version: _v, created_at: _c, ...program } = read;
  return program;
}

/** "body.rules.0.rate" → "rules": errors sit beside the field they belong to. */
const fieldOf = (path: string) => path.replace(/^body\./, "").split(".")[0] ?? path;

export function Program() {
  const me = useMe();
  const [read, reload] = useLoad(() => must(api.GET("/v1/program")), []);
  const [draft, setDraft] = useState<Program | null>(null);
  const [lists, setLists] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Errors>({});
  const [outcome, setOutcome] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  useEffect(() => {
    if (read.state !== "ready") return;
    const program = withoutVersion(read.data);
    setDraft(program);
    setLists(Object.fromEntries(LISTS.map(([k]) => [k, JSON.stringify(program[k] ?? [], null, 1)])));
  }, [read]);

  /** The draft as the API takes it, or null with errors beside the lists that are not JSON. */
  const built = (): Program | null => {
    if (!draft) return null;
    const program: Program = { ...draft };
    const bad: Errors = {};
    for (const [key] of LISTS) {
      try {
        (program as Record<string, unknown>)[key] = JSON.parse(lists[key] || "[]");
      } catch {
        bad[key] = "not valid JSON";
      }
    }
    for (const [key] of TEXT_FIELDS) {
      const value = program[key];
      if (value === "" && key !== "base_rate") (program as Record<string, unknown>)[key] = null;
    }
    setErrors(bad);
    return Object.keys(bad).length ? null : program;
  };
  const problemErrors = (exc: unknown) => {
    const error = exc as ProblemError;
    const found: Errors = {};
    for (const e of (error.problem?.errors ?? []) as Schemas["FieldError"][]) found[fieldOf(e.field)] = e.message;
    setErrors(found);
    setOutcome({ kind: "error", text: error.message });
  };
  const save = async () => {
    const program = built();
    if (!program || read.state !== "ready") return;
    setOutcome(null);
    try {
      const saved = await must(
        api.PUT("/v1/program", {
          params: { header: { "If-Match": `"${read.data.version}"`, "Idempotency-Key": intent() } },
          body: program,
        }),
      );
      setOutcome({ kind: "ok", text: `Saved as version ${saved.version}.` });
      reload();
    } catch (exc) {
      problemErrors(exc);
    }
  };

  return (
    <section class="program">
      <h1>Program</h1>
      <Show loaded={read} what="the program">
        {(r) =>
          draft && (
            <form
              class="program-form"
              onSubmit={(event) => {
                event.preventDefault();
                void save();
              }}
            >
              <p class="muted">
                Version {r.version}, saved {when(r.created_at)}.
              </p>
              {TEXT_FIELDS.map(([key, label]) => (
                <label key={key}>
                  {label}
                  <input
                    name={key}
                    value={(draft[key] as string | null | undefined) ?? ""}
                    onInput={(e) => setDraft({ ...draft, [key]: e.currentTarget.value })}
                  />
                  {errors[key] && <span class="field-error" data-error={key}>{errors[key]}</span>}
                </label>
              ))}
              <label>
                Rounding
                <select name="rounding" value={draft.rounding} onChange={(e) => setDraft({ ...draft, rounding: e.currentTarget.value as Program["rounding"] })}>
                  <option value="half_up">Half up</option>
                  <option value="half_even">Half even</option>
                  <option value="down">Down</option>
                </select>
              </label>
              {FLAGS.map(([key, label]) => (
                <label key={key} class="check">
                  <input
                    type="checkbox"
                    name={key}
                    checked={Boolean(draft[key])}
                    onChange={(e) => setDraft({ ...draft, [key]: e.currentTarget.checked })}
                  />
                  {label}
                </label>
              ))}
              {LISTS.map(([key, label]) => (
                <label key={key}>
                  {label}
                  <textarea name={key} rows={4} value={lists[key]} onInput={(e) => setLists({ ...lists, [key]: e.currentTarget.value })} />
                  {errors[key] && <span class="field-error" data-error={key}>{errors[key]}</span>}
                </label>
              ))}
              {outcome && <Notice kind={outcome.kind}>{outcome.text}</Notice>}
              {isAdmin(me) ? (
                <button type="submit">Save as a new version</button>
              ) : (
                <p class="muted">Only an admin key can change the program.</p>
              )}
            </form>
          )
        }
      </Show>
      {draft && <Preview draft={built} />}
      {draft && <WhatIf draft={built} />}
      <Versions version={read.state === "ready" ? read.data.version : 0} />
    </section>
  );
}

function Preview({ draft }: { draft: () => Program | null }) {
  const [order, setOrder] = useState("");
  const [answer, setAnswer] = useState<Schemas["PreviewResponse"] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const run = async () => {
    setProblem(null);
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(order) as Record<string, unknown>;
    } catch {
      setProblem("Paste an order as Shopify sends it (JSON).");
      return;
    }
    try {
      setAnswer(await must(api.POST("/v1/cashback/preview", { body: { order: payload, program: draft() } })));
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  const line = (label: string, b: Schemas["BreakdownRead"] | null) =>
    b && (
      <p data-preview={label}>
        {label}: <strong>{money(b.cashback_amount, b.currency)}</strong> on {money(b.eligible_amount, b.currency)} eligible
        {b.capped ? " (capped)" : ""}
        {b.reasons.length ? ` — ${b.reasons.join("; ")}` : ""}
      </p>
    );
  return (
    <div class="preview">
      <h2>Preview an order under the draft</h2>
      <textarea name="preview_order" rows={4} placeholder='{"id": 1, "line_items": [...]}' value={order} onInput={(e) => setOrder(e.currentTarget.value)} />
      <button type="button" onClick={() => void run()}>
        Preview
      </button>
      {problem && <Notice kind="error">{problem}</Notice>}
      {answer && (
        <>
          {line("Current program", answer.current)}
          {line("Draft", answer.draft)}
        </>
      )}
    </div>
  );
}

function WhatIf({ draft }: { draft: () => Program | null }) {
  const today = new Date().toISOString().slice(0, 10);
  const monthAgo = new Date(Date.now() - 30 * 86400_000).toISOString().slice(0, 10);
  const [from, setFrom] = useState(monthAgo);
  const [to, setTo] = useState(today);
  const [answer, setAnswer] = useState<Schemas["SimulationResult"] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const run = async () => {
    const program = draft();
    if (!program) return;
    setProblem(null);
    try {
      setAnswer(await must(api.POST("/v1/program/simulate", { body: { program, date_from: from, date_to: to } })));
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  return (
    <div class="whatif">
      <h2>What if: the draft over past orders</h2>
      <label>
        From <input type="date" name="sim_from" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
      </label>
      <label>
        To <input type="date" name="sim_to" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
      </label>
      <button type="button" onClick={() => void run()}>
        Simulate
      </button>
      {problem && <Notice kind="error">{problem}</Notice>}
      {answer && (
        <p data-simulation>
          {answer.orders} orders: now {money(answer.current.cashback_amount, answer.currency)} (
          {answer.current.orders_earning} earning), with the draft {money(answer.draft.cashback_amount, answer.currency)} (
          {answer.draft.orders_earning} earning); difference {money(answer.difference, answer.currency)}.
        </p>
      )}
    </div>
  );
}

function Versions({ version }: { version: number }) {
  const [events] = useLoad(
    async () =>
      (await must(
        api.GET("/v1/audit-events", { params: { query: { action: "program.updated", limit: 20 } } }),
      )) as Schemas["AuditEventList"],
    [version],
  );
  return (
    <div class="versions">
      <h2>Version history</h2>
      <Show loaded={events} what="the version history">
        {(page) =>
          page.items.length === 0 ? (
            <p class="empty">The program has not been changed yet.</p>
          ) : (
            <ol>
              {page.items.map((e) => (
                <li key={e.id}>
                  Version {String((e.after as { version?: number } | null)?.version ?? "?")}: {when(e.at)} by {e.actor}
                </li>
              ))}
            </ol>
          )
        }
      </Show>
    </div>
  );
}
