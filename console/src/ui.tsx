// Shared pieces: the router, data loading with its three states in words, status badges.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

import { ProblemError, type OrderStatus, say } from "./api";
import { onLive, type LiveEvent } from "./live";

export const BASE = "/console";

// ---- routing: paths under /console, history API; the service answers index.html for all.
const routeListeners = new Set<() => void>();
export function navigate(to: string): void {
  history.pushState(null, "", BASE + to);
  for (const listener of routeListeners) listener();
}
window.addEventListener("popstate", () => routeListeners.forEach((listener) => listener()));

export function usePath(): string {
  const [, force] = useState(0);
  useEffect(() => {
    const listener = () => force((n) => n + 1);
    routeListeners.add(listener);
    return () => void routeListeners.delete(listener);
  }, []);
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "/";
  return path || "/";
}

export function Link(props: { to: string; children: ComponentChildren; class?: string }) {
  return (
    <a
      href={BASE + props.to}
      class={props.class}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey) return;
        event.preventDefault();
        navigate(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

// ---- loading: every state in words.
export type Loaded<T> =
  | { state: "loading" }
  | { state: "error"; message: string; status: number }
  | { state: "ready"; data: T };

/** Loads with `load`, again when `deps` change, and on `stream.resync` and `refetchOn` events. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[],
  refetchOn?: (event: LiveEvent) => boolean,
): [Loaded<T>, () => void] {
  const [loaded, setLoaded] = useState<Loaded<T>>({ state: "loading" });
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    load().then(
      (data) => mine === generation.current && setLoaded({ state: "ready", data }),
      (exc: unknown) =>
        mine === generation.current &&
        setLoaded({
          state: "error",
          message: exc instanceof ProblemError ? exc.message : say(exc),
          status: exc instanceof ProblemError ? exc.status : 0,
        }),
    );
  }, deps);
  useEffect(() => {
    setLoaded({ state: "loading" });
    run();
  }, [run]);
  useEffect(
    () =>
      onLive((event) => {
        if (event.type === "stream.resync" || refetchOn?.(event)) run();
      }),
    [run],
  );
  return [loaded, run];
}

export function Show<T>(props: {
  loaded: Loaded<T>;
  what: string;
  children: (data: T) => ComponentChildren;
}) {
  const { loaded } = props;
  if (loaded.state === "loading") return <p class="loading" role="status">Loading {props.what}…</p>;
  if (loaded.state === "error")
    return (
      <p class="error" role="alert">
        Could not load {props.what}: {loaded.message}
      </p>
    );
  return <>{props.children(loaded.data)}</>;
}

export function Notice(props: { kind: "error" | "ok" | "info"; children: ComponentChildren }) {
  return (
    <p class={`notice ${props.kind}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </p>
  );
}

// ---- status badges, in the product's words.
export const STATUS: Record<OrderStatus, [string, string]> = {
  received: ["📥", "Received"],
  awaiting_payment: ["💳", "Awaiting payment"],
  awaiting_customer: ["👤", "Awaiting customer"],
  not_eligible: ["➖", "No cashback"],
  pending: ["⏳", "Pending"],
  held: ["⏸️", "Held"],
  scheduled: ["📅", "Scheduled"],
  processed: ["✅", "Processed"],
  rejected: ["❌", "Rejected"],
  partially_reversed: ["↩️", "Partially reversed"],
  reversed: ["🔄", "Reversed"],
  failed: ["⚠️", "Failed"],
};

export function Badge(props: { status: OrderStatus }) {
  const [icon, label] = STATUS[props.status] ?? ["•", props.status];
  return (
    <span class={`badge ${props.status}`} data-status={props.status}>
      {icon} {label}
    </span>
  );
}

export function Figure(props: { label: string; value: ComponentChildren; name: string }) {
  return (
    <div class="figure" data-figure={props.name}>
      <div class="value">{props.value}</div>
      <div class="label">{props.label}</div>
    </div>
  );
}
