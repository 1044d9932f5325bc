// The answer page's "re-verify" button: ask the node to check the attribution record again, show the verdict.
"use strict";
(function () {
  const button = document.getElementById("verify");
  if (!button) return;
  const out = document.getElementById("verify-result");
  const list = document.getElementById("verify-checks");
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.dataset.state = "running";
    out.textContent = "Verifying… (recomputing an attribution takes a few seconds)";
    list.replaceChildren();
    try {
      const resp = await fetch(`/explorer/answers/${button.dataset.receipt}/verify`, { method: "POST" });
      const doc = await resp.json();
      if (!resp.ok) throw new Error(doc.error ? `${doc.error.code}: ${doc.error.message}` : `HTTP ${resp.status}`);
      out.dataset.state = doc.matches ? "ok" : "fail";
      out.textContent = doc.matches
        ? `Verified${doc.recomputed ? " and recomputed" : " against the ledger (the node holds no bundle to recompute with)"}.`
        : "Does NOT match: " + doc.differences.join("; ");
      for (const c of doc.checks) {
        const li = document.createElement("li");
        li.textContent = "✓ " + c;
        list.append(li);
      }
    } catch (err) {
      out.dataset.state = "fail";
      out.textContent = "Could not verify: " + err.message;
    } finally {
      button.disabled = false;
    }
  });
})();
