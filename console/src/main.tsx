// The merchant console: sign-in (API key, or Shopify session tokens when embedded), the
// navigation, and the screens. Everything it shows comes from the /v1 API through the typed
// client; the role from GET /v1/me decides which buttons exist.
import "./style.css";

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { api, embedded, type Me, must, rememberKey, storedKey } from "./api";
import { setTimezone } from "./format";
import { onLiveStatus, startLive } from "./live";
import { Audit } from "./screens/Audit";
import { Dashboard, prefetchDashboard } from "./screens/Dashboard";
import { Mode } from "./screens/Mode";
import { OrderPage } from "./screens/Order";
import { Orders } from "./screens/Orders";
import { Program } from "./screens/Program";
import { Review } from "./screens/Review";
import { Settings } from "./screens/Settings";
import { MeContext } from "./session";
import { Link, Notice, usePath } from "./ui";


const NAV: [string, string][] = [
  ["/", "Dashboard"],
  ["/orders", "Orders"],
  ["/review", "Review queue"],
  ["/mode", "Processing mode"],
  ["/program", "Program"],
  ["/settings", "Settings"],
  ["/audit", "Audit log"],
];

function Screen() {
  const path = usePath();
  const order = /^\/orders\/(\d+)$/.exec(path);
  if (order?.[1]) return <OrderPage id={order[1]} />;
  switch (path) {
    case "/":
      return <Dashboard />;
    case "/orders":
      return <Orders />;
    case "/review":
      return <Review />;
    case "/mode":
      return <Mode />;
    case "/program":
      return <Program />;
    case "/settings":
      return <Settings />;
    case "/audit":
      return <Audit />;
    default:
      return <Notice kind="info">There is no page at {path}. Pick one from the menu.</Notice>;
  }
}

function LiveDot() {
  const [connected, setConnected] = useState(false);
  useEffect(() => onLiveStatus(setConnected), []);
  return (
    <span class={`live ${connected ? "on" : "off"}`} data-live={connected ? "on" : "off"}>
      {connected ? "● Live" : "○ Reconnecting"}
    </span>
  );
}

function Shell(props: { me: Me; signOut: () => void }) {
  const path = usePath();
  const { me } = props;
  return (
    <MeContext.Provider value={me}>
      <header>
        <strong>Cashback</strong>
        <span class="shop">{me.shop}</span>
        <span class="role" data-role={me.role}>
          {me.actor} · {me.role}
        </span>
        <LiveDot />
        {!embedded() && (
          <button type="button" class="link" onClick={props.signOut}>
            Sign out
          </button>
        )}
      </header>
      <nav>
        {NAV.map(([to, label]) => (
          <Link key={to} to={to} class={path === to || (to !== "/" && path.startsWith(to)) ? "current" : ""}>
            {label}
          </Link>
        ))}
      </nav>
      <main>
        <Screen />
      </main>
    </MeContext.Provider>
  );
}

function SignIn(props: { problem: string | null; onKey: (key: string) => void }) {
  const [key, setKey] = useState("");
  return (
    <form
      class="signin"
      onSubmit={(event) => {
        event.preventDefault();
        if (key.trim()) props.onKey(key.trim());
      }}
    >
      <h1>Cashback console</h1>
      <p>Sign in with one of your shop's API keys. Its role decides what you can do here.</p>
      <label>
        API key
        <input
          name="api_key"
          type="password"
          autoComplete="off"
          placeholder="cbk_…"
          value={key}
          onInput={(event) => setKey(event.currentTarget.value)}
        />
      </label>
      {props.problem && <Notice kind="error">{props.problem}</Notice>}
      <button type="submit">Sign in</button>
    </form>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [checking, setChecking] = useState(embedded() || storedKey() !== null);

  const check = async () => {
    setChecking(true);
    try {
      const found = await must(api.GET("/v1/me"));
      setTimezone(found.timezone);
      setMe(found);
      setProblem(null);
      startLive();
    } catch (exc) {
      if (!embedded()) rememberKey(null);
      setProblem((exc as Error).message);
    } finally {
      setChecking(false);
    }
  };
  useEffect(() => {
    if (!checking) return;
    // Opening on the dashboard: ask for its figures now, not after GET /v1/me answers.
    if (location.pathname.replace(/\/+$/, "") === "/console") prefetchDashboard();
    void check();
  }, []);

  if (me) {
    return (
      <Shell
        me={me}
        signOut={() => {
          rememberKey(null);
          location.reload();
        }}
      />
    );
  }
  if (checking) return <p class="loading" role="status">Signing in…</p>;
  if (embedded()) return <Notice kind="error">The Shopify admin did not sign you in: {problem}</Notice>;
  return (
    <SignIn
      problem={problem}
      onKey={(key) => {
        rememberKey(key);
        void check();
      }}
    />
  );
}

const root = document.getElementById("app") as HTMLElement;
root.textContent = ""; // the "Loading the console…" shown until this script ran
render(<App />, root);
