// The teacher's board, for the projector: the session's title, its code in large type, the QR
// code of its join link, how many devices joined, and the newest results as they arrive.
// Researcher token only. The QR code is an SVG the gateway draws; nothing comes from elsewhere.

import { blobUrl, fileUrl, getJson, request, researcherToken } from "../api.js";
import { announce, errorBox, errorText, field, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { outputsOf } from "../media.js";
import { statusBadge } from "../runs.js";
import { tokenForm } from "./research.js";

const POLL_MS = 2000;
const NEWEST = 8;

function boardHeading() {
  return h("h1", { tabindex: "-1" }, t("board.title"));
}

// #/board: sign in, then open a session for the board.
export function boardStartView(main, ctx) {
  const heading = boardHeading();
  if (!researcherToken()) return tokenForm(main, ctx, heading);
  const title = h("input", { name: "title", required: true, maxlength: "200" });
  const safety = h("select", { name: "safety_level" }, ...["kids", "youth", "adult", "research"].map((level) => h("option", { value: level }, level)));
  const problems = h("div");
  const form = h(
    "form",
    { class: "board-open" },
    h("p", {}, t("board.intro")),
    h("div", { class: "filter-grid" }, field(t("research.sessionTitle"), title), field(t("research.sessionSafety"), safety)),
    h("button", { type: "submit", class: "primary" }, t("board.openSession")),
    problems,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await (
        await request("/api/sessions", { method: "POST", researcher: true, body: { title: title.value.trim(), safety_level: safety.value } })
      ).json();
      location.hash = `#/board/${session.session_id}`;
    } catch (error) {
      replace(problems, errorBox(error));
    }
  });
  replace(main, heading, form);
  return heading;
}

function devicesText(count) {
  return t(count === 1 ? "board.devices.one" : "board.devices.other", { count });
}

// One result tile; an image output is fetched once (with the token) and kept as a blob URL.
function resultTile(record, previews) {
  const output = outputsOf(record).find((e) => !e.blocked && e.mime.startsWith("image/"));
  let picture;
  if (record.status === "completed" && output) {
    const key = `${record.run_id}/${output.filename}`;
    picture = h("img", { class: "board-thumb", alt: record.request.input_text || "" });
    if (!previews.has(key)) previews.set(key, blobUrl(fileUrl(record.run_id, output.filename), { researcher: true }));
    previews.get(key).then(
      (src) => {
        picture.src = src;
      },
      () => picture.replaceWith(h("div", { class: "board-thumb thumb-empty" }, statusBadge(record.status))),
    );
  } else {
    picture = h("div", { class: "board-thumb thumb-empty" }, statusBadge(record.status));
  }
  return h(
    "li",
    { class: "board-result", dataset: { runId: record.run_id, status: record.status } },
    picture,
    h("span", { class: "board-prompt" }, record.request.input_text || "—"),
  );
}

function closeControl(sessionId, onClosed) {
  const open = h("button", { type: "button", class: "danger", id: "board-close" }, t("board.close"));
  const problems = h("div");
  const confirm = h(
    "div",
    { class: "board-confirm", hidden: true, role: "group", "aria-label": t("board.close") },
    h("p", {}, t("board.closeConfirm")),
    h(
      "button",
      {
        type: "button",
        class: "danger",
        id: "board-close-yes",
        onclick: async () => {
          try {
            await request(`/api/sessions/${sessionId}/close`, { method: "POST", researcher: true });
            announce(t("board.closed"));
            onClosed();
          } catch (error) {
            replace(problems, errorBox(error));
          }
        },
      },
      t("board.closeYes"),
    ),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => {
          confirm.hidden = true;
          open.hidden = false;
          open.focus();
        },
      },
      t("board.closeNo"),
    ),
    problems,
  );
  open.addEventListener("click", () => {
    open.hidden = true;
    confirm.hidden = false;
    confirm.querySelector("button").focus();
  });
  return h("div", { class: "board-actions" }, open, confirm);
}

// #/board/<session id>: the live board.
export function boardView(main, ctx, sessionId) {
  const heading = boardHeading();
  if (!researcherToken()) return tokenForm(main, ctx, heading);
  document.body.classList.add("board-mode");
  const title = h("p", { class: "board-session", id: "board-session" });
  const code = h("p", { class: "board-code", id: "board-code" });
  const qr = h("img", { class: "board-qr", id: "board-qr", alt: "" });
  const how = h("p", { class: "board-how", id: "board-how" });
  const devices = h("p", { class: "board-devices", id: "board-devices", "aria-live": "polite" });
  const state = h("div", { id: "board-state" }); // "closed", at the top
  const actions = h("div", { id: "board-actions" }); // closing, at the bottom
  const results = h("ul", { class: "board-results", id: "board-results" });
  const empty = h("p", { class: "board-empty", hidden: true }, t("board.noResults"));
  const trouble = h("div", { class: "board-trouble" });
  const join = h("section", { class: "board-join", "aria-label": t("board.joinLabel") }, code, qr, how);
  const newest = h(
    "section",
    { class: "board-newest", "aria-labelledby": "board-newest-h" },
    h("h2", { id: "board-newest-h" }, t("board.results")),
    results,
    empty,
  );
  const head = h("div", { class: "board-head" }, heading, title, devices);
  const body = h("div", { class: "board-body" }, join, newest);
  replace(main, h("div", { class: "board" }, head, state, body, trouble, actions));

  const previews = new Map();
  let timer = null;
  let stopped = false;
  let qrLoaded = false;
  let closed = false;
  let shownRuns = "";
  ctx.onLeave(() => {
    stopped = true;
    clearTimeout(timer);
    document.body.classList.remove("board-mode");
    for (const pending of previews.values()) pending.then((src) => URL.revokeObjectURL(src), () => {});
  });

  const showClosed = () => {
    closed = true;
    join.hidden = true;
    replace(actions);
    replace(state, h("p", { class: "board-closed", role: "status" }, t("board.closed")));
  };

  async function refresh() {
    try {
      const board = await getJson(`/api/sessions/${sessionId}/board`, { researcher: true });
      if (stopped) return;
      title.textContent = board.session.title;
      code.textContent = board.session.code;
      how.textContent = t("board.how", { site: new URL(board.join_url).origin });
      how.dataset.joinUrl = board.join_url;
      const text = devicesText(board.devices_joined);
      if (devices.textContent !== text) devices.textContent = text;
      devices.dataset.count = String(board.devices_joined);
      if (!board.open && !closed) showClosed();
      if (board.open && !closed && !actions.querySelector("#board-close")) {
        replace(actions, closeControl(sessionId, showClosed)); // the next poll confirms it
      }
      if (!qrLoaded && board.open) {
        qrLoaded = true;
        qr.alt = t("board.qrAlt", { title: board.session.title });
        qr.src = await blobUrl(`/api/sessions/${sessionId}/join-qr.svg`, { researcher: true });
      }
      const query = new URLSearchParams({ session_id: sessionId, limit: String(NEWEST) });
      const page = await getJson(`/api/runs?${query}`, { researcher: true });
      if (stopped) return;
      // Redraw only when something changed, so pictures do not flicker on the projector.
      const signature = page.items.map((r) => `${r.run_id}:${r.status}`).join(",");
      if (signature !== shownRuns) {
        shownRuns = signature;
        replace(results, page.items.map((record) => resultTile(record, previews)));
      }
      empty.hidden = page.items.length > 0;
      replace(trouble);
    } catch (error) {
      if (stopped) return;
      if (error.status === 404) {
        replace(main, heading, h("p", { class: "error", role: "alert" }, t("board.unknown")));
        stopped = true;
        document.body.classList.remove("board-mode");
        return;
      }
      // Keep trying: a projector left running rides out a short outage on its own.
      replace(trouble, h("p", { class: "error", role: "alert" }, errorText(error)));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
  return heading;
}
