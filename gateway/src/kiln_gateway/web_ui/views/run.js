// One run: its prompt, workflow, settings and media (live until it is final).

import { getJson } from "../api.js";
import { errorBox, h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { FINAL, followRun, resultOf, runFacts } from "../runs.js";

export function runView(main, ctx, runId) {
  const heading = h("h1", { tabindex: "-1" }, t("run.title"));
  const body = h("div", { class: "run-detail", id: "run-detail", dataset: { runId } });
  const back = h("p", {}, h("a", { href: "#/mine", class: "back" }, `← ${t("run.back")}`));
  replace(main, back, heading, body);
  const controller = new AbortController();
  ctx.onLeave(() => controller.abort());

  (async () => {
    try {
      let record = await getJson(`/api/runs/${encodeURIComponent(runId)}`, { signal: controller.signal });
      if (!FINAL.has(record.status)) {
        const live = h("section", { class: "progress-panel" });
        replace(body, runFacts(record, ctx.workflows), live);
        record = await followRun(runId, live, { signal: controller.signal });
      }
      const media = h("section", { class: "run-media", "aria-label": t("run.media") });
      replace(body, runFacts(record, ctx.workflows), media);
      replace(media, h("h2", {}, t("run.media")), await resultOf(record));
    } catch (error) {
      if (error.name !== "AbortError") replace(body, errorBox(error));
    }
  })();
  return heading;
}
