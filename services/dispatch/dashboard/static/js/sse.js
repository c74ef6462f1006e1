// Server-Sent Events over fetch(): EventSource cannot send the Authorization header, so the
// stream (GET /v1/stream) is read with a ReadableStream and parsed here. Reconnects with
// Last-Event-ID so no transition is missed; honours the server's `retry:` field.

import { authHeaders, url } from "./api.js";

/**
 * Open the case stream. Callbacks: onEvent({id, type, data}), onStatus(state) with state one of
 * "connecting" | "live" | "reconnecting" | "unauthorized". Returns {close()}.
 */
export function openStream({ onEvent, onStatus }) {
  let stopped = false;
  let lastId = null;
  let retryMs = 2000;
  let controller = null;

  const status = (s) => { try { onStatus?.(s); } catch (err) { console.error(err); } };

  function dispatch(block) {
    let id = null;
    let type = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (id !== null) lastId = id;
    if (!data.length) return;
    let parsed;
    try { parsed = JSON.parse(data.join("\n")); } catch { parsed = data.join("\n"); }
    try { onEvent?.({ id, type, data: parsed }); } catch (err) { console.error(err); }
  }

  async function once() {
    controller = new AbortController();
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(url("/v1/stream"), { headers, cache: "no-store", signal: controller.signal });
    if (response.status === 401) return "unauthorized";
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    status("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        dispatch(block);
      }
    }
    return "ended";
  }

  (async () => {
    status("connecting");
    while (!stopped) {
      try {
        const outcome = await once();
        if (outcome === "unauthorized") { status("unauthorized"); return; }
      } catch (err) {
        if (stopped) return;
      }
      if (stopped) return;
      status("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  })();

  return {
    close() {
      stopped = true;
      controller?.abort();
    },
  };
}
