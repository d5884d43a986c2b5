// One server-sent event stream per page (GET /v1/events). EventSource cannot send the
// Authorization header, so the stream is read with fetch() and a ReadableStream; on a dropped
// connection it reconnects with Last-Event-ID, and the server's `stream.resync` tells every
// screen to refetch (events are live-only, so a reconnect may have missed some).
import { credential, type Schemas } from "./api";

/** The `data` of a live event, as openapi.yaml declares it for GET /v1/events. */
export type LiveEvent =
  | Schemas["OrderStatusChangedEvent"]
  | Schemas["DashboardUpdatedEvent"]
  | Schemas["StreamResyncEvent"];
type Listener = (event: LiveEvent) => void;

const listeners = new Set<Listener>();
let started = false;
let connected = false;
const statusListeners = new Set<(connected: boolean) => void>();

export function onLive(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onLiveStatus(listener: (connected: boolean) => void): () => void {
  statusListeners.add(listener);
  listener(connected);
  return () => statusListeners.delete(listener);
}

function setConnected(value: boolean): void {
  connected = value;
  for (const listener of statusListeners) listener(value);
}

function dispatch(event: LiveEvent): void {
  for (const listener of [...listeners]) listener(event);
}

export function startLive(): void {
  if (started) return;
  started = true;
  void run();
}

async function run(): Promise<void> {
  let lastId: string | null = null;
  let retryMs = 3000;
  for (;;) {
    try {
      const auth = await credential();
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (auth) headers.Authorization = auth;
      if (lastId) headers["Last-Event-ID"] = lastId;
      const response = await fetch("/v1/events", { headers, cache: "no-store" });
      if (!response.ok || !response.body) throw new Error(`events answered ${response.status}`);
      setConnected(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
          const message = parse(block);
          if (message.retry) retryMs = message.retry;
          if (message.id) lastId = message.id;
          if (message.data) {
            try {
              dispatch(JSON.parse(message.data) as LiveEvent);
            } catch {
              /* not JSON: not one of ours */
            }
          }
        }
      }
    } catch {
      /* fall through to reconnect */
    }
    setConnected(false);
    // Reconnecting may have missed events: tell every screen to refetch once back.
    if (!lastId) lastId = "0";
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

function parse(block: string): { id?: string; data?: string; retry?: number } {
  const message: { id?: string; data?: string; retry?: number } = {};
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") message.id = value;
    else if (field === "data") data.push(value);
    else if (field === "retry" && /^\d+$/.test(value)) message.retry = Number(value);
  }
  if (data.length) message.data = data.join("\n");
  return message;
}
