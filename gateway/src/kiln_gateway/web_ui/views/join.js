// Join by link: /#/join/<code> (what the board's QR code opens) joins at once, no typing.
// A wrong or ended code is said in plain words, with a field to try another.

import { ApiError, request } from "../api.js";
import { announce, errorBox, field, h, replace } from "../dom.js";
import { t } from "../i18n.js";

// Plain words for a code that opens no session (unknown, mistyped, ended, or not a code at all).
export function joinFailure(error, code) {
  if (error instanceof ApiError && (error.code === "session_not_found" || error.status === 422)) {
    return h("p", { class: "error join-wrong", role: "alert" }, t("join.wrong", { code }));
  }
  return errorBox(error);
}

function anotherCode(initial) {
  const input = h("input", { name: "code", autocomplete: "off", autocapitalize: "characters", required: true, maxlength: "32", value: initial });
  const form = h("form", { class: "join" }, field(t("join.code"), input), h("button", { type: "submit", class: "primary" }, t("join.submit")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/join/${encodeURIComponent(input.value.trim())}`;
  });
  return form;
}

export function joinView(main, ctx, rawCode) {
  let code = rawCode;
  try {
    code = decodeURIComponent(rawCode);
  } catch {
    // Not valid percent-encoding: send it as it is; the gateway says there is no such session.
  }
  const heading = h("h1", { tabindex: "-1" }, t("join.title"));
  const body = h("div", { id: "join-state", "aria-live": "polite" }, h("p", { class: "hint" }, t("join.joining", { code })));
  replace(main, heading, body);
  (async () => {
    try {
      const session = await (await request("/api/sessions/join", { method: "POST", body: { code } })).json();
      await ctx.refreshMe();
      heading.textContent = t("join.done", { title: session.title });
      document.title = `${heading.textContent} · kiln`;
      announce(heading.textContent);
      replace(body, h("p", {}, h("a", { href: "#/create", class: "button primary join-start" }, t("join.start"))));
      body.dataset.state = "joined";
    } catch (error) {
      replace(body, joinFailure(error, code), anotherCode(code));
      body.dataset.state = "failed";
    }
  })();
  return heading;
}
