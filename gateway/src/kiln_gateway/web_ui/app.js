// The workshop UI: a small hash router over four pages (Create, Mine, Ours, Research), the
// teacher's board (#/board) and joining by link (#/join/<code>).

import { getJson } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import { LANGUAGES, lang, setLang, t } from "./i18n.js";
import { boardStartView, boardView } from "./views/board.js";
import { createView } from "./views/create.js";
import { galleryView } from "./views/gallery.js";
import { joinView } from "./views/join.js";
import { researchRunView, researchView } from "./views/research.js";
import { runView } from "./views/run.js";

const NAV = [
  ["#/create", "nav.create"],
  ["#/mine", "nav.mine"],
  ["#/ours", "nav.ours"],
  ["#/research", "nav.research"],
];
const RUN_ID = "([0-9a-f-]{36})";
const KIND_ORDER = ["image", "animation", "audio", "video"];

const ctx = {
  me: null,
  workflows: [],
  leaving: [],
  onLeave(callback) {
    this.leaving.push(callback);
  },
  async refreshMe() {
    this.me = await getJson("/api/me");
    renderChrome();
  },
  render,
};

function route() {
  const hash = location.hash || "#/create";
  let match;
  if ((match = hash.match(new RegExp(`^#/research/run/${RUN_ID}$`)))) return ["#/research", (m) => researchRunView(m, ctx, match[1])];
  if ((match = hash.match(new RegExp(`^#/run/${RUN_ID}$`)))) return ["#/mine", (m) => runView(m, ctx, match[1])];
  if ((match = hash.match(new RegExp(`^#/board/${RUN_ID}$`)))) return ["#/research", (m) => boardView(m, ctx, match[1])];
  if (hash === "#/board") return ["#/research", (m) => boardStartView(m, ctx)];
  if ((match = hash.match(/^#\/join\/(.+)$/))) return ["#/ours", (m) => joinView(m, ctx, match[1])];
  if (hash === "#/mine") return ["#/mine", (m) => galleryView(m, ctx, "mine")];
  if (hash === "#/ours") return ["#/ours", (m) => galleryView(m, ctx, "ours")];
  if (hash === "#/research") return ["#/research", (m) => researchView(m, ctx)];
  return ["#/create", (m) => createView(m, ctx)];
}

function renderChrome(active) {
  document.documentElement.lang = lang();
  document.getElementById("skip-link").textContent = t("skip");
  const current = active ?? route()[0];
  replace(
    document.getElementById("nav"),
    h(
      "ul",
      {},
      NAV.map(([href, key]) =>
        h("li", {}, h("a", { href, "aria-current": href === current ? "page" : undefined }, t(key))),
      ),
    ),
  );
  const switcher = document.getElementById("lang-switch");
  switcher.setAttribute("aria-label", t("lang.label"));
  replace(
    switcher,
    LANGUAGES.map((code) =>
      h(
        "button",
        {
          type: "button",
          lang: code,
          "aria-pressed": String(code === lang()),
          dataset: { lang: code },
          onclick: () => {
            setLang(code);
            render();
          },
        },
        code.toUpperCase(),
      ),
    ),
  );
  const session = ctx.me?.session;
  document.getElementById("session-indicator").textContent = session
    ? t("session.in", { title: session.title })
    : t("session.none");
}

let firstRender = true;

function render() {
  for (const callback of ctx.leaving.splice(0)) callback();
  const [active, view] = route();
  renderChrome(active);
  const main = document.getElementById("main");
  const heading = view(main);
  document.title = `${heading.textContent} · kiln`;
  // Move focus to the new page's heading (not on first load: the page starts at the top).
  if (!firstRender) heading.focus();
  firstRender = false;
}

async function start() {
  setLang(lang());
  try {
    const [me, workflows] = await Promise.all([getJson("/api/me"), getJson("/api/workflows")]);
    ctx.me = me;
    // Pictures first, then moving pictures, sound and video; the first one is preselected.
    ctx.workflows = workflows.sort(
      (a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || a.name.localeCompare(b.name),
    );
  } catch (error) {
    renderChrome();
    replace(document.getElementById("main"), errorBox(error));
    return;
  }
  window.addEventListener("hashchange", render);
  render();
  document.body.dataset.ready = "true";
}

start();
