// Create: choose a workflow, describe it, generate, watch it being made, see the stored result.
// There is no picture upload yet (issue 17). When it comes, use <input type=file accept=image/*
// capture>: workshop tablets reach kiln over plain http, where getUserMedia is not available.

import { request } from "../api.js";
import { announce, errorBox, field, h, replace } from "../dom.js";
import { has, lang, t } from "../i18n.js";
import { followRun, resultOf } from "../runs.js";

// crypto.randomUUID needs a secure context; a workshop tablet may reach the gateway over
// plain http on the local network, where getRandomValues still works.
function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function paramControl(name, spec) {
  const attrs = { name, dataset: { param: name, type: spec.type } };
  if (spec.choices) {
    return h(
      "select",
      attrs,
      spec.choices.map((c) => h("option", { value: JSON.stringify(c), selected: c === spec.default }, String(c))),
    );
  }
  if (spec.type === "bool") return h("input", { ...attrs, type: "checkbox", checked: spec.default === true });
  if (spec.type === "string") {
    return h("input", { ...attrs, type: "text", value: spec.default ?? "", maxlength: spec.max_length ?? undefined });
  }
  return h("input", {
    ...attrs,
    type: "number",
    inputmode: spec.type === "int" ? "numeric" : "decimal",
    step: spec.type === "int" ? "1" : "any",
    min: spec.minimum ?? undefined,
    max: spec.maximum ?? undefined,
    value: spec.default ?? "",
  });
}

function readParams(container) {
  const params = {};
  for (const control of container.querySelectorAll("[data-param]")) {
    const { param, type } = control.dataset;
    if (control.tagName === "SELECT") params[param] = JSON.parse(control.value);
    else if (type === "bool") params[param] = control.checked;
    else if (type === "string") params[param] = control.value;
    else if (control.value !== "") params[param] = Number(control.value);
  }
  return params;
}

export function createView(main, ctx) {
  // Workflows the pipeline cannot run right now (text stages without a chat endpoint, node
  // classes or model files no backend has) are not offered: the gateway would refuse them.
  const workflows = ctx.workflows.filter((w) => !w.unavailable_reason);
  const heading = h("h1", { tabindex: "-1" }, t("create.title"));
  if (!workflows.length) {
    replace(main, heading, h("p", { class: "notice" }, t("create.noWorkflows")));
    return heading;
  }

  const choices = workflows.map((w, index) =>
    h(
      "label",
      { class: "choice" },
      h("input", { type: "radio", name: "workflow", value: w.name, checked: index === 0, required: true }),
      h("span", { class: "choice-title" }, w.title[lang()] || w.title.en || w.name),
      h("span", { class: `kind kind-${w.kind}` }, t(`kind.${w.kind}`)),
    ),
  );
  const params = h("div", { class: "param-grid" });
  const showParams = () => {
    const chosen = workflows.find((w) => w.name === form.elements.workflow.value) || workflows[0];
    replace(
      params,
      Object.entries(chosen.params).map(([name, spec]) =>
        field(has(`param.${name}`) ? t(`param.${name}`) : spec.description || name, paramControl(name, spec)),
      ),
    );
  };
  const prompt = h("textarea", { name: "prompt", rows: "3", required: true, placeholder: t("create.prompt.hint") });
  const button = h("button", { type: "submit", class: "primary", id: "generate" }, t("create.generate"));
  const progress = h("section", { class: "progress-panel", id: "progress", "aria-label": t("progress.label"), hidden: true });
  const result = h("section", { class: "result-panel", id: "result", "aria-label": t("create.result") });
  const problems = h("div", { class: "problems" });

  const form = h(
    "form",
    { class: "create", novalidate: false },
    h("fieldset", { class: "choices" }, h("legend", {}, t("create.workflow")), choices),
    field(t("create.prompt"), prompt),
    h("details", { class: "more" }, h("summary", {}, t("create.more")), params),
    h("div", { class: "actions" }, button),
    problems,
  );
  form.addEventListener("change", (event) => {
    if (event.target.name === "workflow") showParams();
  });

  let key = null;
  let lastBody = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { workflow: form.elements.workflow.value, input_text: prompt.value.trim(), params: readParams(params) };
    // The same request retried (say after a network error) keeps its key: one run, not two.
    if (JSON.stringify(body) !== lastBody) key = idempotencyKey();
    lastBody = JSON.stringify(body);
    button.disabled = true;
    button.textContent = t("create.busy");
    replace(problems);
    replace(result);
    try {
      const accepted = await (
        await request("/api/runs", { method: "POST", body, headers: { "Idempotency-Key": key } })
      ).json();
      lastBody = null; // accepted: pressing generate again makes a new run
      progress.hidden = false;
      progress.dataset.runId = accepted.run_id;
      const record = await followRun(accepted.run_id, progress);
      const shown = await resultOf(record);
      replace(
        result,
        record.status === "completed" ? h("h2", {}, t("create.result")) : null,
        shown,
        h("p", {}, h("a", { href: `#/run/${record.run_id}` }, t("create.open"))),
      );
      announce(t(`status.${record.status}`));
    } catch (error) {
      replace(problems, errorBox(error));
    } finally {
      button.disabled = false;
      button.textContent = t("create.generate");
    }
  });

  showParams();
  replace(main, heading, form, progress, result);
  return heading;
}
