// Draw every `.plot` element's series with uPlot (vendored under /static/vendor at build time).
// The data sits in the element's data-* attributes, so the page itself carries what the chart shows.
"use strict";
(function () {
  const plots = document.querySelectorAll(".plot");
  if (!plots.length) return;
  if (typeof window.uPlot !== "function") {
    plots.forEach((el) => { el.textContent = "Charts need the vendored uPlot (run make venv)."; });
    return;
  }
  const colours = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700"];
  plots.forEach((el) => {
    const x = JSON.parse(el.dataset.x);
    const series = JSON.parse(el.dataset.series);
    const names = JSON.parse(el.dataset.names);
    if (!x.length) { el.textContent = "No data yet."; return; }
    const width = Math.max(280, Math.min(el.parentElement.clientWidth || 560, 720));
    const opts = {
      width, height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "block height" }, { size: 80, values: (u, vals) => vals.map((v) => v.toLocaleString("en")) }],
      series: [{ label: "height" }, ...names.map((n, i) => ({ label: n, stroke: colours[i % colours.length], width: 2,
                                                              points: { show: x.length < 60 } }))],
    };
    new window.uPlot(opts, [x, ...series], el);
  });
})();
