// The playground: post the question to the explorer's relay and append each streamed chunk as it arrives.
"use strict";
(function () {
  const form = document.getElementById("ask");
  const out = document.getElementById("stream");
  const status = document.getElementById("stream-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.textContent = "";
    status.textContent = "Asking…";
    let receipt = null;
    try {
      const body = Object.fromEntries(new FormData(form));
      const resp = await fetch(form.action, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      if (!resp.ok) {
        const doc = await resp.json().catch(() => ({}));
        throw new Error(doc.error ? doc.error.message + (doc.error.detail ? ` (${doc.error.detail})` : "") : `HTTP ${resp.status}`);
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 2);
          if (!event.startsWith("data:")) continue;
          const data = event.slice(5).trim();
          if (data === "[DONE]") continue;
          const doc = JSON.parse(data);
          if (doc.error) throw new Error(doc.error.message || JSON.stringify(doc.error));
          if (doc.receipt_id) receipt = doc.receipt_id;
          const delta = doc.choices && doc.choices[0] && doc.choices[0].delta;
          if (delta && delta.content) out.textContent += delta.content;
        }
      }
      status.replaceChildren("Done. ");
      if (receipt) {
        const a = document.createElement("a");
        a.href = `/answers/${receipt}`;
        a.textContent = "See this answer's page (once its receipt is in a block)";
        status.append(a);
      }
    } catch (err) {
      status.textContent = "Failed: " + err.message;
    }
  });
})();
