// Processing mode, the Feature Manager's "Auto processing" switch. Switching to automatic
// while orders are pending asks whether to process them now or keep them pending; processing
// them runs as a background operation whose progress is followed here.
import { useEffect, useState } from "preact/hooks";

import { api, must, ProblemError, type Schemas } from "../api";
import { isAdmin, useMe } from "../session";
import { Notice, Show, useLoad } from "../ui";

type Operation = Schemas["OperationRead"];

export function Mode() {
  const me = useMe();
  const [settings, reload] = useLoad(() => must(api.GET("/v1/shop/settings")), []);
  const [asking, setAsking] = useState<number | null>(null); // pending orders waiting for a choice
  const [operation, setOperation] = useState<Operation | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const change = async (body: Schemas["SettingsUpdate"]) => {
    setProblem(null);
    setDone(null);
    try {
      const changed = await must(
        api.PATCH("/v1/shop/settings", { body }),
      );
      setAsking(null);
      if (changed.operation) setOperation(changed.operation);
      setDone(
        changed.processing_mode === "automatic"
          ? "Auto processing is on: new orders are credited without review."
          : "Auto processing is off: every order waits for a reviewer.",
      );
      reload();
    } catch (exc) {
      const error = exc as ProblemError;
      if (error.problem?.code === "pending_orders_exist") setAsking(Number(error.problem.pending_count ?? 0));
      else setProblem(error.message);
    }
  };

  useEffect(() => {
    if (!operation || operation.status === "done") return;
    const timer = setTimeout(async () => {
      try {
        setOperation(
          await must(api.GET("/v1/operations/{operation_id}", { params: { path: { operation_id: operation.id } } })),
        );
      } catch (exc) {
        setProblem((exc as Error).message);
      }
    }, 300);
    return () => clearTimeout(timer);
  }, [operation]);

  return (
    <section class="mode">
      <h1>Processing mode</h1>
      <Show loaded={settings} what="the processing mode">
        {(s) => {
          const on = s.processing_mode === "automatic";
          return (
            <>
              <label class="switch">
                <input
                  type="checkbox"
                  role="switch"
                  name="auto_processing"
                  checked={on}
                  disabled={!isAdmin(me) || asking !== null}
                  onChange={() => void change({ processing_mode: on ? "manual" : "automatic" })}
                />
                <span>Auto processing {on ? "on" : "off"}</span>
              </label>
              <p class="muted">
                {on
                  ? "Orders are credited as soon as they are paid, unless a hold rule stops them."
                  : "Every order waits in the review queue for a reviewer."}
              </p>
              {!isAdmin(me) && <p class="muted">Only an admin key can change the mode.</p>}
            </>
          );
        }}
      </Show>
      {asking !== null && (
        <div class="dialog" role="dialog" aria-label="Pending orders">
          <p>
            <strong>{asking} orders are pending.</strong> Process them now at their calculated amounts, or keep
            them pending for a reviewer?
          </p>
          <button type="button" onClick={() => void change({ processing_mode: "automatic", pending_orders: "process" })}>
            Process them now
          </button>
          <button type="button" onClick={() => void change({ processing_mode: "automatic", pending_orders: "keep" })}>
            Keep them pending
          </button>
          <button type="button" class="link" onClick={() => setAsking(null)}>
            Cancel
          </button>
        </div>
      )}
      {done && <Notice kind="ok">{done}</Notice>}
      {problem && <Notice kind="error">{problem}</Notice>}
      {operation && (
        <div class="operation" data-operation={operation.status}>
          <progress max={operation.total} value={operation.succeeded + operation.failed} />
          <p>
            {operation.status === "done" ? "Done" : "Processing"}: {operation.succeeded} of {operation.total} approved
            {operation.failed ? `, ${operation.failed} could not be` : ""}.
          </p>
        </div>
      )}
    </section>
  );
}
