// Talking to the gateway: JSON with kiln's error bodies, the researcher token, and
// Server-Sent Events read through fetch (EventSource cannot send the token header).

const TOKEN_KEY = "kiln.researcherToken";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export function researcherToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setResearcherToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headersFor(researcher, extra = {}) {
  const headers = { ...extra };
  if (researcher) {
    const token = researcherToken();
    if (!token) throw new ApiError(401, "unauthorized", "researcher token required");
    headers.Authorization = `Bearer ${token}`;
  }
  return headers;
}

async function errorOf(response) {
  let code = "http_" + response.status;
  let detail = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") {
      code = body.error;
      detail = body.detail || detail;
    }
  } catch {
    // Not a kiln JSON error (e.g. a proxy's HTML page): keep the status line.
  }
  return new ApiError(response.status, code, detail);
}

export async function request(path, { method = "GET", body, researcher = false, headers = {}, signal } = {}) {
  const init = { method, headers: headersFor(researcher, headers), signal, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", error.message);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function getJson(path, options) {
  return (await request(path, options)).json();
}

// A file as a blob URL: for the researcher, whose media requests must carry the token.
export async function blobUrl(path, options) {
  const response = await request(path, options);
  return URL.createObjectURL(await response.blob());
}

export function fileUrl(runId, filename) {
  return `/api/runs/${encodeURIComponent(runId)}/files/${encodeURIComponent(filename)}`;
}

// Parse one SSE stream; calls onEvent(name, data, id) for every event.
async function readStream(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { name: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
      if (line === "") {
        if (event.data.length) onEvent(event.name, JSON.parse(event.data.join("\n")), event.id);
        event = { name: "message", data: [], id: null };
      } else if (line.startsWith(":")) {
        // heartbeat comment
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.name = val;
        else if (field === "data") event.data.push(val);
        else if (field === "id") event.id = val;
      }
    }
  }
}

// Follow an event stream until isFinal(name, data) says so. A dropped connection is resumed
// (with Last-Event-ID when the server gave ids); onReconnect tells the page it happened.
export async function followEvents(path, { onEvent, isFinal, researcher = false, signal, onReconnect }) {
  let lastId = null;
  let finished = false;
  for (let attempt = 0; attempt < 6 && !finished; attempt += 1) {
    if (attempt > 0) {
      onReconnect?.();
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
    const headers = { Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    let response;
    try {
      response = await request(path, { researcher, headers, signal });
    } catch (error) {
      if (error instanceof ApiError && error.status !== 0 && error.status < 500) throw error;
      if (error.name === "AbortError") return;
      continue;
    }
    try {
      await readStream(response, (name, data, id) => {
        if (id) lastId = id;
        onEvent(name, data);
        if (isFinal(name, data)) finished = true;
      });
    } catch (error) {
      if (error.name === "AbortError") return;
      // The connection broke mid-stream: resume.
    }
    if (finished) return;
  }
  if (!finished) throw new ApiError(0, "network", "the live event stream kept breaking");
}
