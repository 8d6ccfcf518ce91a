// Researcher page: token, filters, one run's full record and history, blocking, exports,
// workshop sessions. Every request here carries the token (Authorization: Bearer …).

import { ApiError, followEvents, getJson, request, researcherToken, setResearcherToken } from "../api.js";
import { announce, errorBox, field, h, replace } from "../dom.js";
import { formatBytes, formatDate, lang, t } from "../i18n.js";
import { renderOutput } from "../media.js";
import { paramsList, statusBadge, workflowTitle } from "../runs.js";

const STATUSES = ["queued", "running", "storing", "completed", "failed", "cancelled"];
const PAGE_SIZE = 25;

// The filter survives a visit to a run's record and back.
let filter = {};

function short(id) {
  return id ? id.slice(0, 8) : "—";
}

// A local calendar day as the instant it starts, in UTC (what the API wants).
function dayStart(value, plusDays = 0) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}

function apiFilter() {
  const out = {};
  if (filter.since) out.since = dayStart(filter.since);
  if (filter.until) out.until = dayStart(filter.until, 1); // "to" includes that whole day
  for (const name of ["session_id", "device_id", "workflow", "status"]) if (filter[name]) out[name] = filter[name];
  return out;
}

export function tokenForm(main, ctx, heading) {
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true });
  const problems = h("div");
  const form = h(
    "form",
    { class: "token" },
    field(t("research.token"), input),
    h("button", { type: "submit", class: "primary" }, t("research.signin")),
    problems,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setResearcherToken(input.value.trim());
    try {
      const me = await getJson("/api/me", { researcher: true });
      if (!me.researcher) throw new ApiError(403, "forbidden", "not a researcher");
      ctx.render();
    } catch (error) {
      setResearcherToken(null);
      replace(problems, h("p", { class: "error", role: "alert" }, t("research.badToken", { detail: error.detail || error.message })));
    }
  });
  replace(main, heading, form);
  return heading;
}

function filterForm(ctx, onApply) {
  const select = (name, options) =>
    h(
      "select",
      { name },
      h("option", { value: "" }, t("research.any")),
      options.map(([value, label]) => h("option", { value, selected: filter[name] === value }, label)),
    );
  const controls = {
    since: h("input", { type: "date", name: "since", value: filter.since || "" }),
    until: h("input", { type: "date", name: "until", value: filter.until || "" }),
    session_id: h("input", { name: "session_id", value: filter.session_id || "", maxlength: "64", autocomplete: "off" }),
    device_id: h("input", { name: "device_id", value: filter.device_id || "", maxlength: "64", autocomplete: "off" }),
    workflow: select("workflow", ctx.workflows.map((w) => [w.name, w.title[lang()] || w.name])),
    status: select("status", STATUSES.map((s) => [s, t(`status.${s}`)])),
  };
  const form = h(
    "form",
    { class: "filters", id: "filters" },
    h(
      "div",
      { class: "filter-grid" },
      field(t("research.since"), controls.since),
      field(t("research.until"), controls.until),
      field(t("research.workflow"), controls.workflow),
      field(t("research.status"), controls.status),
      field(t("research.session"), controls.session_id),
      field(t("research.device"), controls.device_id),
    ),
    h("button", { type: "submit", class: "primary" }, t("research.apply")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    filter = Object.fromEntries(Object.entries(controls).map(([k, c]) => [k, c.value.trim()]));
    onApply();
  });
  return form;
}

function runsTable(ctx) {
  const tbody = h("tbody");
  const count = h("p", { class: "hint", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("gallery.more"));
  const problems = h("div");
  let cursor = null;
  let shown = 0;
  async function load(reset) {
    if (reset) {
      tbody.replaceChildren();
      cursor = null;
      shown = 0;
    }
    more.disabled = true;
    replace(problems);
    try {
      const query = new URLSearchParams({ ...apiFilter(), limit: String(PAGE_SIZE) });
      if (cursor) query.set("cursor", cursor);
      const page = await getJson(`/api/runs?${query}`, { researcher: true });
      for (const record of page.items) {
        tbody.append(
          h(
            "tr",
            { dataset: { runId: record.run_id } },
            h("td", {}, formatDate(record.created_at)),
            h("td", {}, statusBadge(record.status)),
            h("td", {}, workflowTitle(ctx.workflows, record.request.workflow)),
            h("td", { class: "prompt-cell" }, record.request.input_text),
            h("td", { title: record.request.device_id || "" }, h("code", {}, short(record.request.device_id))),
            h("td", { title: record.request.session_id || "" }, h("code", {}, short(record.request.session_id))),
            h("td", {}, h("a", { href: `#/research/run/${record.run_id}`, class: "button secondary small" }, t("research.open"))),
          ),
        );
      }
      shown += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      count.textContent = t("research.count", { count: shown });
    } catch (error) {
      replace(problems, errorBox(error));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", () => load(false));
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "runs", id: "runs-table" },
      h(
        "thead",
        {},
        h("tr", {}, ["col.created", "col.status", "col.workflow", "col.prompt", "col.device", "col.session", ""].map((k) => h("th", { scope: "col" }, k ? t(k) : ""))),
      ),
      tbody,
    ),
  );
  return { element: h("div", {}, count, table, more, problems), load };
}

function exportPanel() {
  const button = h("button", { type: "button", class: "primary", id: "export-start" }, t("research.exportStart"));
  const bar = h("progress", { max: "1", value: "0", hidden: true, "aria-label": t("research.export") });
  const state = h("p", { class: "export-state", "aria-live": "polite" });
  const outcome = h("div", { id: "export-outcome" });
  const describe = (s) =>
    t("research.exportState", { state: s.state, done: s.runs_done, total: s.runs_total, bytes: formatBytes(s.bytes) });

  button.addEventListener("click", async () => {
    button.disabled = true;
    replace(outcome);
    bar.hidden = false;
    bar.value = 0;
    try {
      const accepted = await (
        await request("/api/exports", { method: "POST", researcher: true, body: { filter: apiFilter(), format: "zip" } })
      ).json();
      state.dataset.exportId = accepted.export_id;
      state.textContent = describe({ state: accepted.state, runs_done: 0, runs_total: 0, bytes: 0 });
      let failure = null;
      await followEvents(`/api/exports/${accepted.export_id}/events`, {
        researcher: true,
        onEvent(name, data) {
          if (name === "status" || name === "progress") {
            state.textContent = describe(data);
            if (data.runs_total) bar.value = data.runs_done / data.runs_total;
            if (name === "status" && data.state === "failed") failure = data.error;
          } else if (name === "failed") failure = data.error;
        },
        isFinal: (name, data) => name === "completed" || name === "failed" || (name === "status" && ["completed", "failed"].includes(data.state)),
      });
      const status = await getJson(`/api/exports/${accepted.export_id}`, { researcher: true });
      state.textContent = describe(status);
      state.dataset.state = status.state;
      if (status.state !== "completed") {
        const message = (failure || status.error || {}).message || status.state;
        replace(outcome, h("p", { class: "error", role: "alert" }, t("research.exportFailed", { detail: message })));
        return;
      }
      bar.value = 1;
      // The download needs the token, so a plain link cannot fetch it: fetch, then offer the file.
      const response = await request(`/api/exports/${accepted.export_id}/download`, { researcher: true });
      const url = URL.createObjectURL(await response.blob());
      const name = status.filename || `kiln-export-${accepted.export_id}.zip`;
      replace(outcome, h("a", { href: url, download: name, class: "button primary", id: "export-download" }, t("research.exportDownload")));
      announce(t("research.exportDownload"));
    } catch (error) {
      replace(outcome, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return h("section", { class: "panel", "aria-labelledby": "export-h" }, h("h2", { id: "export-h" }, t("research.export")), button, bar, state, outcome);
}

function sessionPanel() {
  const title = h("input", { name: "title", required: true, maxlength: "200" });
  const safety = h("select", { name: "safety_level" }, ...["kids", "youth", "adult", "research"].map((level) => h("option", { value: level }, level)));
  const outcome = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "session-new" },
    h("div", { class: "filter-grid" }, field(t("research.sessionTitle"), title), field(t("research.sessionSafety"), safety)),
    h("button", { type: "submit", class: "secondary" }, t("research.sessionCreate")),
    outcome,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await (
        await request("/api/sessions", { method: "POST", researcher: true, body: { title: title.value.trim(), safety_level: safety.value } })
      ).json();
      replace(
        outcome,
        h("p", { class: "session-code" }, t("research.sessionCode", { title: session.title, code: session.code })),
        h("p", {}, h("a", { href: `#/board/${session.session_id}`, class: "button primary", id: "session-board" }, t("research.board"))),
      );
    } catch (error) {
      replace(outcome, errorBox(error));
    }
  });
  return h("section", { class: "panel", "aria-labelledby": "session-h" }, h("h2", { id: "session-h" }, t("research.sessionNew")), form);
}

function signOut(ctx) {
  return h(
    "button",
    {
      type: "button",
      class: "secondary small",
      onclick: () => {
        setResearcherToken(null);
        ctx.render();
      },
    },
    t("research.signout"),
  );
}

export function researchView(main, ctx) {
  const heading = h("h1", { tabindex: "-1" }, t("research.title"));
  if (!researcherToken()) return tokenForm(main, ctx, heading);
  const runs = runsTable(ctx);
  const filters = filterForm(ctx, () => runs.load(true));
  replace(
    main,
    h("div", { class: "title-row" }, heading, signOut(ctx)),
    h("section", { class: "panel", "aria-labelledby": "filters-h" }, h("h2", { id: "filters-h" }, t("research.filters")), filters),
    h("section", { class: "panel", "aria-labelledby": "runs-h" }, h("h2", { id: "runs-h" }, t("research.runs")), runs.element),
    exportPanel(),
    sessionPanel(),
  );
  // The board for the projector, for a session opened here or there.
  main.append(h("p", {}, h("a", { href: "#/board" }, t("research.boardStart"))));
  runs.load(true);
  return heading;
}

// ---- one run's full record ---------------------------------------------------------------

function blockControl(record, entity, reload) {
  if (entity.blocked) return h("span", { class: "blocked-note" }, t("research.blockedBy", { reason: entity.blocked.reason }));
  if (!entity.type.startsWith("output")) return null;
  const reason = h("input", { name: "reason", required: true, maxlength: "500" });
  const problems = h("div");
  const form = h(
    "form",
    { class: "block-form", hidden: true },
    field(t("research.blockReason"), reason),
    h("button", { type: "submit", class: "danger" }, t("research.blockConfirm")),
    problems,
  );
  const open = h("button", { type: "button", class: "secondary small", "aria-expanded": "false" }, t("research.block"));
  open.addEventListener("click", () => {
    form.hidden = !form.hidden;
    open.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) reason.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const path = `/api/runs/${record.run_id}/entities/${encodeURIComponent(entity.filename)}/block`;
      await request(path, { method: "PUT", researcher: true, body: { reason: reason.value.trim() } });
      announce(t("research.blockedBy", { reason: reason.value.trim() }));
      await reload();
    } catch (error) {
      replace(problems, errorBox(error));
    }
  });
  return h("div", {}, open, form);
}

async function recordSections(record, ctx, reload) {
  const entities = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "entities" },
      h("thead", {}, h("tr", {}, ["col.file", "col.type", "col.size", "col.sha256", ""].map((k) => h("th", { scope: "col" }, k ? t(k) : "")))),
      h(
        "tbody",
        {},
        record.entities.map((e) =>
          h(
            "tr",
            { dataset: { filename: e.filename } },
            h("td", {}, h("code", {}, e.filename)),
            h("td", {}, `${e.type} (${e.mime})`),
            h("td", {}, formatBytes(e.size)),
            h("td", { title: e.sha256 }, h("code", {}, e.sha256.slice(0, 12) + "…")),
            h("td", {}, blockControl(record, e, reload)),
          ),
        ),
      ),
    ),
  );
  const history = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "history" },
      h("thead", {}, h("tr", {}, ["col.at", "col.event", "col.status", "col.detail"].map((k) => h("th", { scope: "col" }, t(k))))),
      h(
        "tbody",
        {},
        record.events.map((e) =>
          h(
            "tr",
            {},
            h("td", {}, formatDate(e.at)),
            h("td", {}, e.event),
            h("td", {}, statusBadge(e.status)),
            h("td", {}, Object.keys(e.detail).length ? h("code", {}, JSON.stringify(e.detail)) : ""),
          ),
        ),
      ),
    ),
  );
  const previews = h("div", { class: "previews" });
  for (const entity of record.entities.filter((e) => e.type.startsWith("output"))) {
    previews.append(await renderOutput(record.run_id, entity, { alt: record.request.input_text, researcher: true }));
  }
  const request = record.request;
  return [
    h(
      "section",
      { class: "panel" },
      h("h2", {}, t("research.request")),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "run_id"),
        h("dd", {}, h("code", {}, record.run_id)),
        h("dt", {}, t("run.status")),
        h("dd", {}, statusBadge(record.status)),
        h("dt", {}, t("run.prompt")),
        h("dd", { class: "prompt" }, request.input_text),
        h("dt", {}, t("run.workflow")),
        h("dd", {}, `${workflowTitle(ctx.workflows, request.workflow)} (${request.workflow})`),
        h("dt", {}, t("run.params")),
        h("dd", {}, paramsList(request.params)),
        h("dt", {}, t("col.device")),
        h("dd", {}, h("code", {}, request.device_id || "—")),
        h("dt", {}, t("col.session")),
        h("dd", {}, h("code", {}, request.session_id || "—")),
        h("dt", {}, "backend"),
        h("dd", {}, record.backend || "—"),
        record.error ? [h("dt", {}, "error"), h("dd", { class: "error" }, `${record.error.stage} · ${record.error.code}: ${record.error.message}`)] : null,
      ),
      previews,
    ),
    h("section", { class: "panel" }, h("h2", {}, t("research.entities")), entities),
    h("section", { class: "panel" }, h("h2", {}, t("research.history")), history),
    h(
      "details",
      { class: "panel raw" },
      h("summary", {}, t("research.raw")),
      h("pre", {}, JSON.stringify(record, null, 2)),
    ),
  ];
}

export function researchRunView(main, ctx, runId) {
  const heading = h("h1", { tabindex: "-1" }, t("research.record"));
  if (!researcherToken()) return tokenForm(main, ctx, h("h1", { tabindex: "-1" }, t("research.title")));
  const body = h("div", { id: "research-run", dataset: { runId } });
  replace(main, h("p", {}, h("a", { href: "#/research", class: "back" }, `← ${t("run.back")}`)), heading, body);
  const load = async () => {
    try {
      const record = await getJson(`/api/runs/${encodeURIComponent(runId)}`, { researcher: true });
      replace(body, await recordSections(record, ctx, load));
    } catch (error) {
      replace(body, errorBox(error));
    }
  };
  load();
  return heading;
}
