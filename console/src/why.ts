// "Why isn't this order credited?": the seed's common issues, read from the order itself
// (status, status_reason, hold reasons, line reasons, payments) and the shop's mode and queue.
import type { Order, Schemas } from "./api";
import { duration, money, when } from "./format";

const REASONS: Record<string, string> = {
  gift_card: "gift cards earn no cashback",
  tip: "a tip is not a purchase",
  removed: "an order edit took the line off",
  paid_with_credit: "paid with gift cards or store credit",
  test_order: "test orders earn nothing",
  nothing_paid: "nothing was paid for it",
  zero_rate: "its rate is 0%",
  below_minimum: "the order is below the program's minimum eligible amount",
};

/** A line's reason for earning nothing, in words; an exclusion names its rule. */
export function lineReason(reason: string | null, rateSource: string): string | null {
  if (!reason) return null;
  if (reason === "excluded") {
    const rule = rateSource.startsWith("excluded:") ? rateSource.slice("excluded:".length) : "";
    return rule ? `excluded by the rule “${rule}”` : "excluded by a program rule";
  }
  return REASONS[reason] ?? reason;
}

export type Why = { title: string; detail: string; action?: { label: string; to: string } };

export function whyNotCredited(
  order: Order,
  settings: Schemas["ShopSettings"] | null,
  dashboard: Schemas["Dashboard"] | null,
): Why | null {
  const reason = order.status_reason ? ` (${order.status_reason})` : "";
  const lineReasons = [
    ...new Set(order.lines.map((line) => lineReason(line.reason, line.rate_source)).filter(Boolean)),
  ];
  switch (order.status) {
    case "processed":
    case "partially_reversed":
      return null;
    case "pending":
      if (settings?.processing_mode === "manual")
        return {
          title: "Not processing: auto processing is off",
          detail:
            "The shop is in manual mode, so every order waits for a reviewer. Approve it here or in the review queue, or turn on auto processing.",
          action: { label: "Open the Auto processing switch", to: "/mode" },
        };
      return {
        title: "Waiting for a reviewer",
        detail: `The order needs a decision before it is credited${reason}.`,
        action: { label: "Open the review queue", to: "/review" },
      };
    case "held":
      return {
        title: "Held for review",
        detail: `A hold rule stopped it: ${order.hold_reasons.join("; ") || order.status_reason || "see the history"}. A reviewer approves, rejects or releases it.`,
        action: { label: "Open the review queue", to: "/review" },
      };
    case "awaiting_customer":
      return {
        title: "Customer not found",
        detail:
          "The order has no customer account yet (a guest checkout, or the account is not synced). It is credited as soon as the customer's account exists; or use Process cashback once it does.",
      };
    case "not_eligible":
      return {
        title: `${money("0", order.currency)} cashback`,
        detail: `Nothing on this order earns cashback: ${
          lineReasons.join("; ") || order.status_reason || "no line is eligible"
        }. Check the program's exclusion rules and minimums.`,
        action: { label: "Open the program", to: "/program" },
      };
    case "awaiting_payment":
      return {
        title: "Delayed: waiting for payment",
        detail: "Cashback is calculated once the order is paid. Nothing to do until then.",
      };
    case "received":
      return {
        title: "Delayed processing: in the queue",
        detail: `The order is waiting to be calculated${reason}.${
          dashboard
            ? ` ${dashboard.pending_count} orders wait for review; the oldest for ${duration(dashboard.oldest_pending_seconds)}.`
            : ""
        }${order.payments.status === "waiting" ? " The gift card and store credit part of its payment is still being read." : ""}`,
      };
    case "scheduled":
      return {
        title: "Scheduled",
        detail: `Credit waits the shop's award delay: ${money(order.award_amount ?? order.cashback_amount, order.currency)} on ${when(order.award_at)}.`,
      };
    case "failed":
      return {
        title: "Processing failed",
        detail: `${order.last_error || order.status_reason || "The store credit could not be issued"}. Use Process cashback to try again.`,
      };
    case "rejected":
      return {
        title: "Rejected",
        detail: `No cashback: ${order.review_note || order.status_reason || "a reviewer rejected it"}.`,
      };
    case "reversed":
      return {
        title: "Reversed",
        detail: `The cashback was taken back${reason}: ${money(order.reversed_amount, order.currency)}.`,
      };
  }
}
