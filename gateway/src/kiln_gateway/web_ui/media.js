// Shows a stored output by its MIME type: picture (also animated), sound or video player.
// The bytes always come from /api/runs/{id}/files/{filename}, i.e. from storage.

import { ApiError, blobUrl, fileUrl, request } from "./api.js";
import { errorText, h } from "./dom.js";
import { t } from "./i18n.js";

export function outputsOf(record) {
  return record.entities.filter((e) => e.type.startsWith("output"));
}

function mediaElement(entity, src, alt) {
  const [major] = entity.mime.split("/");
  if (major === "image") return h("img", { src, alt, class: "media" });
  if (major === "audio") return h("audio", { src, controls: true, preload: "metadata", class: "media", "aria-label": alt });
  if (major === "video") {
    return h("video", { src, controls: true, preload: "metadata", playsinline: true, class: "media", "aria-label": alt });
  }
  return null;
}

// Why did the browser fail to load it? Ask the same URL and show kiln's JSON error.
async function explainFailure(url, researcher) {
  try {
    await request(url, { researcher, headers: { Range: "bytes=0-0" } });
    return t("error.load", { detail: `${url}` });
  } catch (error) {
    if (error instanceof ApiError && error.code === "blocked") return t("run.blocked");
    return errorText(error);
  }
}

// A figure that shows the entity once it has loaded, or says why it could not.
// Resolves with the figure; the media element carries data-state="loaded" | "error".
export async function renderOutput(runId, entity, { alt = "", researcher = false, download = true } = {}) {
  const url = fileUrl(runId, entity.filename);
  const figure = h("figure", { class: "output", dataset: { filename: entity.filename } });
  if (entity.blocked && !researcher) {
    figure.append(h("p", { class: "notice" }, t("run.blocked")));
    return figure;
  }
  let src = url;
  if (researcher) {
    try {
      src = await blobUrl(url, { researcher: true });
    } catch (error) {
      figure.append(h("p", { class: "error", role: "alert" }, errorText(error)));
      return figure;
    }
  }
  const element = mediaElement(entity, src, alt);
  if (element === null) {
    figure.append(h("p", {}, entity.filename));
  } else {
    element.dataset.state = "loading";
    const loadedEvent = element.tagName === "IMG" ? "load" : "loadedmetadata";
    element.addEventListener(loadedEvent, () => {
      element.dataset.state = "loaded";
    });
    element.addEventListener("error", async () => {
      element.dataset.state = "error";
      element.hidden = true;
      figure.append(h("p", { class: "error", role: "alert" }, await explainFailure(url, researcher)));
    });
    figure.append(element);
  }
  if (download && !researcher) {
    figure.append(
      h("figcaption", {}, h("a", { href: url, download: entity.filename, class: "button secondary" }, t("create.download"))),
    );
  }
  return figure;
}
