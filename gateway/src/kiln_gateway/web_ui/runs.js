// What participants and researchers both see of a run: its status, why it failed, its
// details, and a live view that follows the run's event stream to the end.

import { followEvents, getJson } from "./api.js";
import { h, replace } from "./dom.js";
import { formatDate, has, lang, t } from "./i18n.js";
import { outputsOf, renderOutput } from "./media.js";

export const FINAL = new Set(["completed", "failed", "cancelled"]);
const RECORD_CATCH_UP_MS = 15000;
const QUIET_MS = 4000;

export function workflowTitle(workflows, name) {
  const workflow = workflows.find((w) => w.name === name);
  if (!workflow) return name;
  return workflow.title[lang()] || workflow.title.en || name;
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, dataset: { status } }, t(`status.${status}`));
}

// A failed run, in plain words first and the system's own message second.
export function failureBox(error) {
  const key = error && has(`fail.${error.code}`) ? `fail.${error.code}` : "fail.other";
  return h(
    "div",
    { class: "failure", role: "alert" },
    h("h3", {}, t("fail.title")),
    h("p", { class: "failure-reason" }, t(key)),
    error ? h("p", { class: "failure-detail" }, h("strong", {}, `${t("fail.details")}: `), error.message) : null,
    h("p", {}, t("fail.retry")),
  );
}

export function paramsList(params) {
  const entries = Object.entries(params || {});
  return h(
    "dl",
    { class: "params" },
    entries.map(([name, value]) => [h("dt", {}, name), h("dd", {}, JSON.stringify(value))]),
  );
}

// What the progress panel says: the status, except while a run is being stopped, which the
// backend must confirm (a `cancelling` event; from the snapshot, its history's last entry).
function shownStatus(data) {
  if (FINAL.has(data.status)) return data.status;
  const events = data.record ? data.record.events : [];
  const last = data.record ? events[events.length - 1]?.event : data.event;
  return last === "cancelling" ? "cancelling" : data.status;
}

// Follow a run live: status text, a progress bar, and the final record at the end.
// While the stream is quiet the record is re-read now and then, so a final state the stream
// did not deliver still ends the wait. Returns the final record (or throws).
export async function followRun(runId, panel, { researcher = false, signal } = {}) {
  const status = h("p", { class: "run-status", "aria-live": "polite" });
  const bar = h("progress", { max: "1", "aria-label": t("progress.label") });
  const note = h("p", { class: "hint", "aria-live": "polite" });
  replace(panel, status, bar, note);
  let current = null;
  const show = (value) => {
    current = value;
    replace(status, statusBadge(value));
    panel.dataset.status = value;
    if (value === "completed") bar.value = 1;
    else if (FINAL.has(value)) bar.hidden = true; // no bar pretending something is still coming
  };
  const path = `/api/runs/${encodeURIComponent(runId)}`;
  const stop = new AbortController();
  const signals = signal ? [signal, stop.signal] : [stop.signal];
  let quietSince = Date.now();
  const watchdog = setInterval(async () => {
    if (Date.now() - quietSince < QUIET_MS) return;
    quietSince = Date.now();
    try {
      const record = await getJson(path, { researcher, signal });
      if (FINAL.has(record.status)) {
        show(record.status);
        stop.abort();
      }
    } catch {
      // The stream itself reports lasting trouble; this check only shortens a quiet wait.
    }
  }, QUIET_MS / 2);
  try {
    await followEvents(`${path}/events`, {
      researcher,
      signal: AbortSignal.any(signals),
      onEvent(name, data) {
        note.textContent = "";
        quietSince = Date.now();
        if (name === "state") show(shownStatus(data));
        else if (name === "progress" && !FINAL.has(current)) bar.value = data.share;
      },
      isFinal: (name, data) => name === "state" && FINAL.has(data.status),
      onReconnect() {
        note.textContent = t("progress.reconnecting");
      },
    });
  } finally {
    clearInterval(watchdog);
  }
  signal?.throwIfAborted();
  // The stream can announce a final state a moment before media-service has written it into
  // the record (both learn it from NATS): wait, bounded, for the record to catch up, so a
  // failure is shown with its reason and a result is never looked for too early.
  const deadline = Date.now() + RECORD_CATCH_UP_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    const record = await getJson(path, { researcher, signal });
    if (FINAL.has(record.status) || Date.now() > deadline) return record;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

// The outputs of a final record, each one loaded from storage (or the failure, in words).
export async function resultOf(record, { researcher = false } = {}) {
  const box = h("div", { class: "result", dataset: { runId: record.run_id, status: record.status } });
  if (record.status === "failed" || record.status === "cancelled") {
    box.append(failureBox(record.error || { code: record.status, message: "" }));
    return box;
  }
  const outputs = outputsOf(record);
  if (!outputs.length) {
    box.append(h("p", { class: "notice" }, t("run.noOutputs")));
    return box;
  }
  for (const entity of outputs) {
    box.append(await renderOutput(record.run_id, entity, { alt: record.request.input_text, researcher }));
  }
  return box;
}

export function runFacts(record, workflows) {
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, t("run.prompt")),
    h("dd", { class: "prompt" }, record.request.input_text),
    h("dt", {}, t("run.workflow")),
    h("dd", {}, workflowTitle(workflows, record.request.workflow)),
    h("dt", {}, t("run.status")),
    h("dd", {}, statusBadge(record.status)),
    h("dt", {}, t("run.created")),
    h("dd", {}, formatDate(record.created_at)),
    h("dt", {}, t("run.params")),
    h("dd", {}, paramsList(record.request.params)),
  );
}
