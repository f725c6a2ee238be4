// report.html's behaviour: draw every figure with Plotly from the inline data, and the run
// browser (sortable, filterable table; selected runs' curves and router load). No request is
// ever made: everything is in #lab-data.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("lab-data").textContent);
  const config = { responsive: true, displaylogo: false, scrollZoom: true };

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children || []) e.append(c);
    return e;
  }

  function drawFigures() {
    const root = document.getElementById("charts");
    for (const chart of data.charts) {
      const links = el("span", { class: "links" }, [
        el("a", { href: `${data.plots}/${chart.stem}.png` }, ["PNG"]), " · ",
        el("a", { href: `${data.plots}/${chart.stem}.svg` }, ["SVG"]),
      ]);
      const plot = el("div", { class: "chart", id: `chart-${chart.stem}`, "data-stem": chart.stem });
      const caption = el("p", { class: "caption" }, [chart.caption]);
      root.append(el("div", { class: "figure" }, [links, el("h3", {}, [chart.title]), plot, caption]));
      Plotly.newPlot(plot, chart.data, chart.layout, config);
    }
  }

  // ---- run browser ----
  const hasLr = data.runs.some((r) => r.lr !== null);
  const columns = [
    ["", "select"], ["run", "name", "text"], ["size", "size", "text"], ["arm", "arm", "text"],
    ["seed", "seed"], ...(hasLr ? [["lr", "lr", null, "e"]] : []),
    ["status", "status", "text"], ["steps", "steps"],
    ["final val loss", "final_val_loss", null, 4], ["loss spikes", "loss_spikes"],
    ["peak MiB", "peak_mib", null, 1], ["tokens/s", "tokens_per_s", null, 0], ["files", "files", "text"],
  ];
  const state = { sortKey: "name", ascending: true, selected: [] };
  const armColor = (arm) => data.colors[arm] || "#555";

  function fillSelect(id, values) {
    const select = document.getElementById(id);
    for (const v of [...new Set(values)].sort()) select.append(el("option", { value: v }, [v]));
    select.addEventListener("change", renderTable);
  }

  function visibleRuns() {
    const arm = document.getElementById("filter-arm").value;
    const size = document.getElementById("filter-size").value;
    const status = document.getElementById("filter-status").value;
    const text = document.getElementById("filter-text").value.toLowerCase();
    const rows = data.runs.filter((r) =>
      (!arm || r.arm === arm) && (!size || r.size === size) &&
      (!status || r.status === status) && (!text || r.name.toLowerCase().includes(text)));
    const k = state.sortKey, sign = state.ascending ? 1 : -1;
    const value = (r) => (r[k] === null || r[k] === undefined ? Infinity : r[k]);
    return rows.sort((a, b) => (value(a) < value(b) ? -sign : value(a) > value(b) ? sign : 0));
  }

  function cell(run, [, key, kind, digits]) {
    const td = el("td", kind ? { class: kind } : {});
    if (key === "select") {
      const box = el("input", { type: "checkbox", "data-run": run.name });
      box.checked = state.selected.includes(run.name);
      box.addEventListener("change", () => toggle(run.name, box.checked));
      td.append(box);
    } else if (key === "files") {
      for (const f of ["metrics.csv", "evals.csv", "summary.json"]) {
        td.append(el("a", { href: `${run.dir}/${f}` }, [f.split(".")[0]]), " ");
      }
    } else {
      const v = run[key];
      td.textContent = v === null ? "—" : digits === "e" ? v.toExponential(1)
        : digits !== undefined ? v.toFixed(digits) : v;
    }
    return td;
  }

  function renderTable() {
    const head = document.querySelector("#run-table thead");
    head.replaceChildren(el("tr", {}, columns.map(([label, key, kind]) => {
      const arrow = state.sortKey === key ? (state.ascending ? " ▲" : " ▼") : "";
      const th = el("th", { "data-key": key, class: kind || "" }, [label + arrow]);
      th.addEventListener("click", () => {
        state.ascending = state.sortKey === key ? !state.ascending : true;
        state.sortKey = key;
        renderTable();
      });
      return th;
    })));
    const rows = visibleRuns();
    document.querySelector("#run-table tbody").replaceChildren(...rows.map((r) => {
      const tr = el("tr", { "data-run": r.name }, columns.map((c) => cell(r, c)));
      if (state.selected.includes(r.name)) tr.classList.add("selected");
      return tr;
    }));
    document.getElementById("run-count").textContent = `${rows.length} of ${data.runs.length} runs`;
  }

  function toggle(name, on) {
    state.selected = state.selected.filter((n) => n !== name);
    if (on) state.selected.push(name);
    history.replaceState(null, "", state.selected.length ? `#runs=${state.selected.join(",")}` : "#");
    renderTable();
    drawSelection();
  }

  // The run paired with `run`: the same name in the baseline arm (names are size-arm-seed,
  // with the budget or learning rate where the experiment has one).
  function pairedRun(run) {
    if (!data.baseline || run.arm === data.baseline) return null;
    const name = run.name.replace(`-${run.arm}-`, `-${data.baseline}-`);
    return data.curves[name] ? name : null;
  }

  // `(x, y)` less the paired curve `(px, py)` at the same fraction of training (arms matched
  // on compute can differ by a step or two in length; the last points pair with each other),
  // the paired curve interpolated linearly between its points.
  function minus([x, y], [px, py]) {
    const pts = px.map((s, i) => [s, py[i]]).filter(([, v]) => v !== null);
    if (!x.length || !pts.length) return [[], []];
    const [end, pend] = [x[x.length - 1] || 1, pts[pts.length - 1][0] || 1];
    const at = (s) => {
      const t = (s / end) * pend;
      const j = pts.findIndex(([ps]) => ps >= t);
      if (j <= 0) return j === 0 ? pts[0][1] : pts[pts.length - 1][1];
      const [[s0, v0], [s1, v1]] = [pts[j - 1], pts[j]];
      return v0 + ((v1 - v0) * (t - s0)) / (s1 - s0);
    };
    const keep = x.map((s, i) => [s, y[i]]).filter(([, v]) => v !== null);
    return [keep.map(([s]) => s), keep.map(([s, v]) => v - at(s))];
  }

  function drawSelection() {
    const runs = state.selected.map((n) => data.runs.find((r) => r.name === n));
    const diff = document.getElementById("curves-diff").checked;
    const log = document.getElementById("curves-scale").value === "log" && !diff;
    const traces = [];
    for (const r of runs) {
      const c = data.curves[r.name];
      const paired = diff ? pairedRun(r) : null;
      if (diff && !paired) continue;
      const [train, val] = paired
        ? [minus(c.train, data.curves[paired].train), minus(c.val, data.curves[paired].val)]
        : [c.train, c.val];
      const what = paired ? `− ${paired}` : "loss";
      const line = { color: armColor(r.arm) };
      traces.push({ type: "scatter", mode: "lines", name: `${r.name} train`, x: train[0],
        y: train[1], line, meta: r.name, hovertemplate: `<b>%{meta} train</b><br>step %{x}<br>${what} %{y:.4f}<extra></extra>` });
      traces.push({ type: "scatter", mode: "lines+markers", name: `${r.name} val`, x: val[0],
        y: val[1], line: { ...line, dash: "dot" }, meta: r.name,
        hovertemplate: `<b>%{meta} validation</b><br>step %{x}<br>${what} %{y:.4f}<extra></extra>` });
    }
    const empty = traces.length === 0;
    const title = empty
      ? (diff && runs.length ? `No ticked run has a paired run in ${data.baseline}` : "Tick runs in the table to compare their curves")
      : diff ? `Selected runs: loss − the paired ${data.baseline} run's (below 0: lower loss)` : "Selected runs: loss";
    Plotly.react("run-curves", traces, {
      title: { text: title },
      xaxis: { title: { text: "step" }, visible: !empty },
      yaxis: { title: { text: diff ? "loss difference (nats)" : "loss" }, type: log ? "log" : "linear",
               visible: !empty, zeroline: diff }, margin: { t: 40 },
    }, config);
    const withRouter = runs.filter((r) => data.curves[r.name].router).pop();
    const h = withRouter && data.curves[withRouter.name].router;
    Plotly.react("run-router", h ? [{ type: "heatmap", x: h.x, y: h.y, z: h.z, colorscale: "Blues", reversescale: true,
      zmin: 0, hovertemplate: "step %{x}<br>%{y}<br>load share %{z:.3f}<extra></extra>" }] : [], {
      title: { text: h ? `Router load share per layer and expert: ${withRouter.name}` : "No ticked run has a router" },
      xaxis: { title: { text: "step" }, visible: !!h }, yaxis: { automargin: true, visible: !!h },
      margin: { t: 40 },
    }, config);
  }

  function setupRuns() {
    document.getElementById("baseline-arm").textContent = data.baseline || "none";
    document.getElementById("curves-diff").disabled = !data.baseline;
    document.getElementById("curves-diff").addEventListener("change", drawSelection);
    document.getElementById("curves-scale").addEventListener("change", drawSelection);
    fillSelect("filter-arm", data.runs.map((r) => r.arm));
    fillSelect("filter-size", data.runs.map((r) => r.size));
    fillSelect("filter-status", data.runs.map((r) => r.status));
    document.getElementById("filter-text").addEventListener("input", renderTable);
    // A link may name runs to show ticked: report.html#runs=NAME,NAME (to send a colleague).
    const named = decodeURIComponent((location.hash.match(/runs=([^&]*)/) || [])[1] || "");
    state.selected = named.split(",").filter((n) => data.runs.some((r) => r.name === n));
    renderTable();
    drawSelection();
  }

  drawFigures();
  setupRuns();
  if (state.selected.length) document.getElementById("runs").scrollIntoView();
  // Milliseconds from navigation to every figure drawn (docs/measurements.md reads it).
  document.body.dataset.renderMs = String(Math.round(performance.now()));
  document.body.dataset.ready = "true";
})();
