// What a frontend writes with a client typed from openapi.yaml: `tsc --noEmit` checks every path,
// parameter, body and answer below against the document (`npm run check`).
import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";

type OrderSummary = components["schemas"]["OrderSummary"];
type OrderStatus = components["schemas"]["OrderStatus"];
type Problem = components["schemas"]["Problem"];

function fail(problem: Problem): never {
  throw new Error(`${problem.status} ${problem.code}: ${problem.detail ?? problem.title}`);
}

export async function createShop(baseUrl: string, operatorToken: string): Promise<string> {
  const operator = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${operatorToken}` },
  });
  const { data, error } = await operator.POST("/v1/admin/shops", {
    body: { domain: "acme.myshopify.com", currency: "USD", processing_mode: "manual" },
  });
  if (error) fail(error);
  return data.api_key;
}

export async function reviewQueue(baseUrl: string, apiKey: string): Promise<string> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${apiKey}` } });

  const settings = await api.PATCH("/v1/shop/settings", {
    body: { processing_mode: "manual", approval_ceiling: "50.00" },
  });
  if (settings.error) fail(settings.error);
  const mode: "automatic" | "manual" = settings.data.processing_mode;

  // listOrders: the review queue, oldest first, a page at a time.
  const wanted: OrderStatus[] = ["pending", "held"];
  const queue: OrderSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.GET("/v1/orders", {
      params: {
        query: { status: wanted.join(","), sort: "created_at", limit: 200, ...(cursor ? { cursor } : {}) },
      },
    });
    if (page.error) fail(page.error);
    queue.push(...page.data.items);
    cursor = page.data.next_cursor ?? undefined;
  } while (cursor);

  const counts = await api.GET("/v1/orders/counts");
  if (counts.error) fail(counts.error);
  const pendingBadge: number | undefined = counts.data.counts.pending;

  const first = queue[0];
  if (first === undefined) return `${mode}: nothing to review (${pendingBadge ?? 0})`;

  // getOrder then approveOrder with its ETag: a stale screen gets a 412 problem.
  const detail = await api.GET("/v1/orders/{order_id}", {
    params: { path: { order_id: first.id } },
  });
  if (detail.error) fail(detail.error);
  const etag = detail.response.headers.get("ETag") ?? "*";
  if (!detail.data.allowed_actions.includes("approve")) return "not approvable";
  const approved = await api.POST("/v1/orders/{order_id}/approve", {
    params: { path: { order_id: first.id }, header: { "If-Match": etag } },
    body: { note: "checked by phone" },
  });
  if (approved.error) {
    if (approved.error.code === "version_mismatch") return "reload: the order changed";
    fail(approved.error);
  }
  const status: OrderStatus = approved.data.status;

  // rejectOrder needs a reason; bulkApproveOrders takes the ids as the API wrote them.
  const second = queue[1];
  if (second !== undefined) {
    const rejected = await api.POST("/v1/orders/{order_id}/reject", {
      params: { path: { order_id: second.id } },
      body: { reason: "staff test order" },
    });
    if (rejected.error) fail(rejected.error);
  }
  const bulk = await api.POST("/v1/orders/bulk-approve", {
    body: { ids: queue.slice(2).map((order) => order.id) },
  });
  if (bulk.error) fail(bulk.error);
  const refused = bulk.data.results.filter((result) => !result.ok).map((result) => result.code);

  // getCustomer: the balance is a decimal string next to its currency.
  const customerId = approved.data.customer_id;
  if (customerId === null) return `${status}: no customer yet`;
  const customer = await api.GET("/v1/customers/{customer_id}", {
    params: { path: { customer_id: customerId } },
  });
  if (customer.error) fail(customer.error);
  const balance: string = customer.data.balance;
  const ledger = await api.GET("/v1/customers/{customer_id}/ledger", {
    params: { path: { customer_id: customerId }, query: { limit: 20 } },
  });
  if (ledger.error) fail(ledger.error);
  const kinds = ledger.data.items.map((entry) => entry.kind);

  // getDashboardMetrics: today's figures for the dashboard screen.
  const dashboard = await api.GET("/v1/metrics/dashboard", { params: { query: { tz: "Europe/Berlin" } } });
  if (dashboard.error) fail(dashboard.error);

  return [
    status,
    `${balance} ${customer.data.currency}`,
    kinds.join(","),
    refused.join(","),
    dashboard.data.cashback_issued_today,
  ].join(" | ");
}
