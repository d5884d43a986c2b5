// Settings: hold rules, award delay, approval ceiling, notifications and alerts, the review
// schedule and weekly audit, API keys and roles, and the Shopify connection. Saved with one
// PATCH of what changed; validation errors sit beside their fields.
import { useEffect, useState } from "preact/hooks";

import { api, intent, must, ProblemError, type Schemas } from "../api";
import { when } from "../format";
import { isAdmin, useMe } from "../session";
import { Notice, Show, useLoad } from "../ui";

type Form = Record<string, string | boolean>;

const TEXT: [string, string][] = [
  ["award_delay_days", "Award delay (days after payment)"],
  ["approval_ceiling", "Approval ceiling (most a reviewer may approve per order)"],
  ["timezone", "Timezone"],
  ["hold.cashback_above", "Hold when cashback is above"],
  ["hold.order_total_above", "Hold when the order total is above"],
  ["hold.customer_daily_orders_above", "Hold when a customer's orders in a day are above"],
  ["hold.customer_daily_cashback_above", "Hold when a customer's cashback in a day is above"],
  ["hold.fraud_prone_tags", "Hold orders with these product tags (comma-separated)"],
  ["notification_webhook_url", "Notification webhook URL"],
  ["alert_webhook_url", "Alert webhook URL"],
  ["review_deadline_hours", "Review deadline (hours)"],
  ["review_at", "Daily review call at (HH:MM, empty: none)"],
  ["audit_weekday", "Weekly audit report on (mon … sun, empty: none)"],
];
const FLAGS: [string, string][] = [
  ["hold.first_order", "Hold a customer's first order"],
  ["hold.b2b_orders", "Hold B2B orders"],
  ["hold.unverified_customer", "Hold customers without a verified email"],
  ["notify_customers", "Tell customers about their credit"],
  ["push_store_credit", "Issue the credit as Shopify store credit"],
];

function toForm(s: Schemas["ShopSettings"]): Form {
  const h = s.hold_rules;
  const text = (v: unknown) => (v === null || v === undefined ? "" : String(v));
  return {
    award_delay_days: text(s.award_delay_days),
    approval_ceiling: text(s.approval_ceiling),
    timezone: s.timezone,
    "hold.cashback_above": text(h.cashback_above),
    "hold.order_total_above": text(h.order_total_above),
    "hold.customer_daily_orders_above": text(h.customer_daily_orders_above),
    "hold.customer_daily_cashback_above": text(h.customer_daily_cashback_above),
    "hold.fraud_prone_tags": (h.fraud_prone?.tags ?? []).join(", "),
    "hold.first_order": Boolean(h.first_order),
    "hold.b2b_orders": Boolean(h.b2b_orders),
    "hold.unverified_customer": Boolean(h.unverified_customer),
    notify_customers: s.notify_customers,
    push_store_credit: s.push_store_credit,
    notification_webhook_url: text(s.notification_webhook_url),
    alert_webhook_url: text(s.alert_webhook_url),
    review_deadline_hours: text(s.review_deadline_hours),
    review_at: text(s.review_schedule?.at),
    audit_weekday: text(s.weekly_audit?.weekday),
  };
}

function toUpdate(f: Form, s: Schemas["ShopSettings"]): Schemas["SettingsUpdate"] {
  const str = (k: string) => (f[k] as string).trim() || null;
  const int = (k: string) => (str(k) === null ? null : Number(str(k)));
  return {
    award_delay_days: int("award_delay_days") ?? 0,
    approval_ceiling: str("approval_ceiling"),
    timezone: str("timezone"),
    notify_customers: f.notify_customers as boolean,
    push_store_credit: f.push_store_credit as boolean,
    notification_webhook_url: str("notification_webhook_url"),
    alert_webhook_url: str("alert_webhook_url"),
    review_deadline_hours: int("review_deadline_hours"),
    review_schedule: str("review_at") ? { ...(s.review_schedule ?? {}), at: str("review_at") as string } : null,
    weekly_audit: str("audit_weekday")
      ? { ...(s.weekly_audit ?? {}), weekday: str("audit_weekday") as Schemas["Weekday"] }
      : null,
    hold_rules: {
      ...s.hold_rules,
      cashback_above: str("hold.cashback_above"),
      order_total_above: str("hold.order_total_above"),
      customer_daily_orders_above: int("hold.customer_daily_orders_above"),
      customer_daily_cashback_above: str("hold.customer_daily_cashback_above"),
      fraud_prone: {
        ...(s.hold_rules.fraud_prone ?? {}),
        tags: (f["hold.fraud_prone_tags"] as string).split(",").map((t) => t.trim()).filter(Boolean),
      },
      first_order: f["hold.first_order"] as boolean,
      b2b_orders: f["hold.b2b_orders"] as boolean,
      unverified_customer: f["hold.unverified_customer"] as boolean,
    },
  };
}

/** "body.hold_rules.cashback_above" → "hold.cashback_above"; "body.award_delay_days" → itself. */
function formField(path: string): string {
  const parts = path.replace(/^body\./, "").split(".");
  if (parts[0] === "hold_rules") return `hold.${parts[1] === "fraud_prone" ? "fraud_prone_tags" : parts[1]}`;
  if (parts[0] === "review_schedule") return "review_at";
  if (parts[0] === "weekly_audit") return "audit_weekday";
  return parts[0] ?? path;
}

export function Settings() {
  const me = useMe();
  const [settings, reload] = useLoad(() => must(api.GET("/v1/shop/settings")), []);
  const [form, setForm] = useState<Form | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [outcome, setOutcome] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  useEffect(() => {
    if (settings.state === "ready") setForm(toForm(settings.data));
  }, [settings]);
  const admin = isAdmin(me);
  const save = async (s: Schemas["ShopSettings"], f: Form) => {
    setOutcome(null);
    setErrors({});
    try {
      await must(api.PATCH("/v1/shop/settings", { body: toUpdate(f, s) }));
      setOutcome({ kind: "ok", text: "Settings saved." });
      reload();
    } catch (exc) {
      const error = exc as ProblemError;
      const found: Record<string, string> = {};
      for (const e of (error.problem?.errors ?? []) as Schemas["FieldError"][]) found[formField(e.field)] = e.message;
      setErrors(found);
      setOutcome({ kind: "error", text: error.message });
    }
  };
  return (
    <section class="settings">
      <h1>Settings</h1>
      <Show loaded={settings} what="the settings">
        {(s) =>
          form && (
            <form
              onSubmit={(event) => {
                event.preventDefault();
                void save(s, form);
              }}
            >
              <fieldset disabled={!admin}>
                {TEXT.map(([key, label]) => (
                  <label key={key}>
                    {label}
                    <input name={key} value={form[key] as string} onInput={(e) => setForm({ ...form, [key]: e.currentTarget.value })} />
                    {errors[key] && <span class="field-error" data-error={key}>{errors[key]}</span>}
                  </label>
                ))}
                {FLAGS.map(([key, label]) => (
                  <label key={key} class="check">
                    <input type="checkbox" name={key} checked={form[key] as boolean} onChange={(e) => setForm({ ...form, [key]: e.currentTarget.checked })} />
                    {label}
                  </label>
                ))}
              </fieldset>
              {outcome && <Notice kind={outcome.kind}>{outcome.text}</Notice>}
              {admin ? <button type="submit">Save settings</button> : <p class="muted">Only an admin key can change settings.</p>}
            </form>
          )
        }
      </Show>
      <Connection />
      {admin && <Keys />}
    </section>
  );
}

function Connection() {
  const me = useMe();
  const s = me.shopify;
  return (
    <div class="connection" data-connection={s ? (s.needs_reauth ? "needs_reauth" : "installed") : "none"}>
      <h2>Shopify connection</h2>
      {!s ? (
        <p>Not installed as a Shopify app: the shop's Admin API token, if any, was set by hand.</p>
      ) : (
        <>
          <p>
            Installed {when(s.installed_at)}; token {s.token_state.replace("_", " ")}.
          </p>
          <p class="muted">Scopes: {s.scopes.join(", ") || "none"}</p>
          {s.needs_reauth && (
            <Notice kind="error">
              Shopify refused the app's token{s.reauth_reason ? ` (${s.reauth_reason})` : ""}: store credit waits until you
              authorise the app again.{" "}
              {s.reauth_url && (
                <a class="button" href={s.reauth_url} target="_top">
                  Re-authenticate
                </a>
              )}
            </Notice>
          )}
        </>
      )}
    </div>
  );
}

function Keys() {
  const [keys, reload] = useLoad(() => must(api.GET("/v1/api-keys", { params: { query: { limit: 100 } } })), []);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Schemas["ApiKeyRole"]>("reviewer");
  const [created, setCreated] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const create = async () => {
    setProblem(null);
    try {
      const key = await must(api.POST("/v1/api-keys", { params: { header: { "Idempotency-Key": intent() } }, body: { name, role } }));
      setCreated(key.api_key);
      setName("");
      reload();
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  const revoke = async (id: string) => {
    setProblem(null);
    try {
      await must(api.DELETE("/v1/api-keys/{key_id}", { params: { path: { key_id: id } } }));
      reload();
    } catch (exc) {
      setProblem((exc as Error).message);
    }
  };
  return (
    <div class="keys">
      <h2>API keys and roles</h2>
      {problem && <Notice kind="error">{problem}</Notice>}
      {created && (
        <Notice kind="ok">
          New key (shown once): <code data-new-key>{created}</code>
        </Notice>
      )}
      <Show loaded={keys} what="the API keys">
        {(page) => (
          <table>
            <tbody>
              {page.items.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>{k.role}</td>
                  <td>
                    <code>{k.prefix}…</code>
                  </td>
                  <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : `created ${when(k.created_at)}`}</td>
                  <td>
                    {!k.revoked_at && (
                      <button type="button" class="link" onClick={() => void revoke(k.id)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          void create();
        }}
      >
        <input name="key_name" placeholder="Name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <select name="key_role" value={role} onChange={(e) => setRole(e.currentTarget.value as Schemas["ApiKeyRole"])}>
          <option value="admin">admin</option>
          <option value="reviewer">reviewer</option>
          <option value="viewer">viewer</option>
        </select>
        <button type="submit">Create key</button>
      </form>
    </div>
  );
}
