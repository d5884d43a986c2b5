// The console's only way to the service: the client typed from openapi.yaml (openapi-fetch),
// signed with either an API key the merchant typed in (standalone) or a Shopify session token
// from App Bridge (embedded in the Shopify admin; a fresh token per request).
import createClient, { type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type Order = Schemas["OrderRead"];
export type OrderSummary = Schemas["OrderSummary"];
export type OrderStatus = Schemas["OrderStatus"];
export type Me = Schemas["Me"];

const KEY_STORAGE = "cashback.api_key";

type AppBridge = { idToken: () => Promise<string> };

function appBridge(): AppBridge | undefined {
  const shopify = (window as unknown as { shopify?: Partial<AppBridge> }).shopify;
  return typeof shopify?.idToken === "function" ? (shopify as AppBridge) : undefined;
}

/** Embedded in the Shopify admin: App Bridge loaded and answers with session tokens. */
export const embedded = (): boolean => appBridge() !== undefined;

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function rememberKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_STORAGE);
  else sessionStorage.setItem(KEY_STORAGE, key);
}

/** The Authorization header value for the next request, or null when nobody signed in. */
export async function credential(): Promise<string | null> {
  const bridge = appBridge();
  if (bridge) return `Bearer ${await bridge.idToken()}`;
  const key = storedKey();
  return key ? `Bearer ${key}` : null;
}

const sign: Middleware = {
  async onRequest({ request }) {
    const value = await credential();
    if (value) request.headers.set("Authorization", value);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(sign);

/** What went wrong, in words: the problem's `detail`, else its title, else the HTTP status. */
export function say(error: unknown, response?: Response): string {
  const problem = error as Partial<Problem> | undefined;
  if (problem && typeof problem === "object") {
    if (problem.detail) return problem.detail;
    if (problem.title) return problem.title;
  }
  if (response) return `The service answered ${response.status} ${response.statusText}`.trim();
  if (error instanceof Error) return `The service could not be reached (${error.message})`;
  return "The service could not be reached";
}

export class ProblemError extends Error {
  constructor(
    readonly problem: Partial<Problem> & Record<string, unknown>,
    readonly status: number,
  ) {
    super(say(problem));
  }
}

/** Unwraps an openapi-fetch answer: the data, or a ProblemError carrying the problem. */
export async function must<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let answer;
  try {
    answer = await call;
  } catch (exc) {
    throw new ProblemError({ detail: say(exc) }, 0);
  }
  if (answer.error !== undefined || answer.data === undefined) {
    const problem = (answer.error ?? {}) as ProblemError["problem"];
    if (!problem.detail && !problem.title) problem.detail = say(undefined, answer.response);
    throw new ProblemError(problem, answer.response.status);
  }
  return answer.data;
}

/** A fresh Idempotency-Key per intended action: a retried click never acts twice. */
export const intent = (): string => crypto.randomUUID();

// Requests started before the screen that needs them is rendered (the dashboard's, while
// GET /v1/me is still on its way): the screen takes the answer instead of asking again.
const early = new Map<string, Promise<unknown>>();

export function prefetch(key: string, load: () => Promise<unknown>): void {
  const started = load();
  started.catch(() => undefined); // a failure is shown by the screen that takes it
  early.set(key, started);
}

export function takeEarly<T>(key: string, load: () => Promise<T>): Promise<T> {
  const started = early.get(key);
  early.delete(key);
  return (started as Promise<T> | undefined) ?? load();
}
