// Galleries: "Mine" (this device) and "Ours" (this workshop session), newest first, loading
// more as one scrolls (and with a button, for keyboards and old browsers).

import { fileUrl, getJson, request } from "../api.js";
import { announce, errorBox, field, h, replace } from "../dom.js";
import { formatDate, t } from "../i18n.js";
import { outputsOf } from "../media.js";
import { statusBadge, workflowTitle } from "../runs.js";
import { joinFailure } from "./join.js";

const PAGE_SIZE = 12;
const MAX_PAGES_PER_LOAD = 5;

function thumbnail(record) {
  const output = outputsOf(record).find((e) => !e.blocked);
  if (record.status !== "completed" || !output) return h("div", { class: "thumb thumb-empty" }, statusBadge(record.status));
  const [major] = output.mime.split("/");
  const src = fileUrl(record.run_id, output.filename);
  if (major === "image") return h("img", { class: "thumb", src, alt: "", loading: "lazy" });
  if (major === "video") return h("video", { class: "thumb", src, preload: "metadata", muted: true, "aria-hidden": "true" });
  return h("div", { class: "thumb thumb-empty" }, h("span", { class: `kind kind-audio` }, t("kind.audio")));
}

function card(record, workflows) {
  return h(
    "li",
    { class: "card", dataset: { runId: record.run_id, status: record.status } },
    h(
      "a",
      { href: `#/run/${record.run_id}` },
      thumbnail(record),
      h("span", { class: "card-prompt" }, record.request.input_text || "—"),
      h(
        "span",
        { class: "card-meta" },
        workflowTitle(workflows, record.request.workflow),
        " · ",
        formatDate(record.created_at),
      ),
    ),
  );
}

function joinForm(ctx) {
  const code = h("input", { name: "code", autocomplete: "off", autocapitalize: "characters", required: true, maxlength: "32" });
  const problems = h("div");
  const form = h(
    "form",
    { class: "join" },
    h("p", {}, t("gallery.joinFirst")),
    field(t("join.code"), code),
    h("button", { type: "submit", class: "primary" }, t("join.submit")),
    problems,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const session = await (
        await request("/api/sessions/join", { method: "POST", body: { code: code.value.trim().toUpperCase() } })
      ).json();
      announce(t("join.joined", { title: session.title }));
      await ctx.refreshMe();
      ctx.render();
    } catch (error) {
      replace(problems, joinFailure(error, code.value.trim().toUpperCase()));
    }
  });
  return form;
}

export function galleryView(main, ctx, which) {
  const heading = h("h1", { tabindex: "-1" }, t(which === "ours" ? "gallery.ours" : "gallery.mine"));
  const { me, workflows } = ctx;
  if (which === "ours" && !me.session) {
    replace(main, heading, joinForm(ctx));
    return heading;
  }
  // In a session the listing holds the whole session's runs; "Mine" keeps this device's.
  const keep = which === "mine" && me.session ? (r) => r.request.device_id === me.device_id : () => true;
  const list = h("ul", { class: "gallery", id: "gallery", "aria-live": "polite" });
  const status = h("p", { class: "hint", "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", id: "load-more" }, t("gallery.more"));
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  let cursor = null;
  let done = false;
  let loading = false;
  let shown = 0;

  async function load() {
    if (loading || done) return;
    loading = true;
    more.disabled = true;
    status.textContent = t("gallery.loading");
    try {
      let added = 0;
      for (let page = 0; page < MAX_PAGES_PER_LOAD && added === 0 && !done; page += 1) {
        const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
        if (cursor) query.set("cursor", cursor);
        const data = await getJson(`/api/runs?${query}`);
        for (const record of data.items.filter(keep)) {
          list.append(card(record, workflows));
          added += 1;
        }
        cursor = data.next_cursor;
        done = !cursor;
      }
      shown += added;
      status.textContent = done ? (shown ? t("gallery.end") : t("gallery.empty")) : "";
      more.hidden = done;
    } catch (error) {
      replace(status, errorBox(error));
    } finally {
      loading = false;
      more.disabled = false;
    }
    // Still room on a tall screen: keep filling it.
    if (!done && sentinel.getBoundingClientRect().top < window.innerHeight) load();
  }

  more.addEventListener("click", load);
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) load();
  });
  observer.observe(sentinel);
  ctx.onLeave(() => observer.disconnect());
  replace(main, heading, list, sentinel, status, more);
  load();
  return heading;
}
