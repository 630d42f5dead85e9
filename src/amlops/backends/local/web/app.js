// The amlops local workspace page: plain DOM and an inline SVG graph, no libraries.
// Everything shown comes from the service's JSON (the token cookie authorizes the GETs);
// text is always set with textContent, never parsed as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const FINISHED = ["Completed", "Failed", "Canceled"];
const NODE_W = 200, NODE_H = 56, GAP_X = 110, GAP_Y = 26, PAD = 20;

let timers = [];
let generation = 0; // bumps on every navigation: stale answers are dropped

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.error ? `${response.status}: ${body.error.message}` : response.statusText);
  }
  return body;
}

function every(ms, fn) {
  timers.push(setInterval(fn, ms));
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function status(code) {
  return el("span", { class: `status ${code}`, text: code });
}

function runLink(id, step) {
  const href = `#/runs/${encodeURIComponent(id)}` + (step ? `/${encodeURIComponent(step)}` : "");
  return el("a", { href, text: step ? `${id}/${step}` : id });
}

function table(columns, rows, empty) {
  if (!rows.length) return el("p", { class: "muted", text: empty });
  return el("table", {},
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { text: c })))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
}

function show(...nodes) {
  document.getElementById("main").replaceChildren(...nodes);
}

function failure(error) {
  show(el("p", { class: "error", text: `Could not load: ${error.message}` }),
    el("p", { class: "muted", text: "Open the page link `amlops serve` printed to sign in again." }));
}

// --- the overview -------------------------------------------------------------------------------

async function home() {
  const mine = generation;
  const draw = async () => {
    let data;
    try {
      data = await api("/ui/api/overview");
    } catch (error) {
      if (mine === generation) failure(error);
      return;
    }
    if (mine !== generation) return;
    document.getElementById("clock").textContent = `as of ${when(data.now)}`;
    show(
      el("h2", { text: "Pipeline endpoints" }),
      table(["Endpoint", "Default", "Versions", "Submit URL"], data.endpoints.map((e) => [
        el("strong", { text: e.name }), `v${e.default_version}`,
        e.versions.map((v) => el("span", {
          class: "tag", title: `pipeline version ${v.pipeline_version}, published ${when(v.published)}`,
          text: `v${v.version}` + (v.version === e.default_version ? " (default)" : ""),
        })),
        el("code", { text: e.url }),
      ]), "No endpoints published yet: run make deploy."),
      el("h2", { text: "Schedules" }),
      table(["Schedule", "Pipeline", "Status", "When", "Next fire", "Last fired", "Last run"],
        data.schedules.map((s) => [
          el("strong", { text: s.name }), s.pipeline, status(s.status), s.when,
          s.next_fire ? when(s.next_fire) : el("span", { class: "muted", text: "—" }),
          when(s.last_fired), s.last_run_id ? runLink(s.last_run_id) : "",
        ]), "No schedules."),
      el("h2", { text: "Runs" }),
      table(["Run", "Pipeline", "Status", "Source", "Started", "Duration", "Steps"],
        data.runs.map((r) => [
          runLink(r.id), r.pipeline + (r.version !== null ? ` v${r.version}` : ""), status(r.status),
          r.source, when(r.started || r.created), seconds(r.duration_s),
          `${r.steps}` + (r.reused ? ` (${r.reused} reused)` : ""),
        ]), "No runs yet."),
    );
  };
  await draw();
  every(3000, draw);
}

// --- one run --------------------------------------------------------------------------------------

function layout(graph) {
  const at = {};
  for (const node of graph.nodes) {
    at[node.id] = { x: PAD + node.layer * (NODE_W + GAP_X), y: PAD + node.row * (NODE_H + GAP_Y) };
  }
  return at;
}

function drawGraph(graph, selected, onPick) {
  const at = layout(graph);
  const width = Math.max(...Object.values(at).map((p) => p.x)) + NODE_W + PAD;
  const height = Math.max(...Object.values(at).map((p) => p.y)) + NODE_H + PAD;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `pipeline ${graph.pipeline}` });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8c959f" }))));
  for (const edge of graph.edges) {
    const a = at[edge.from], b = at[edge.to];
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    root.append(svg("g", { class: "edge", "data-from": edge.from, "data-to": edge.to },
      svg("path", { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`,
        "marker-end": "url(#arrow)" }),
      svg("text", { x: mid, y: (y1 + y2) / 2 - 4, "text-anchor": "middle", text: edge.label })));
  }
  for (const node of graph.nodes) {
    const p = at[node.id];
    const step = node.kind === "step";
    const classes = ["node", node.kind, step ? node.status : "",
      node.reused_from ? "reused" : "", step && node.label === selected ? "selected" : ""];
    const sub = step
      ? node.reused_from ? `♻ reused` : `${node.status}` +
        (node.duration_s !== null ? ` · ${seconds(node.duration_s)}` : "")
      : node.detail;
    const title = `${node.label}: ${node.detail}` +
      (step && node.reused_from ? `, reused from ${node.reused_from}` : "");
    const g = svg("g", { class: classes.join(" ").trim(), "data-node": node.id,
      transform: `translate(${p.x}, ${p.y})` },
    svg("title", { text: title }),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 8 }),
    svg("text", { class: "title", x: 10, y: 22, text: clip(node.label, 24) }),
    svg("text", { class: "sub", x: 10, y: 42, text: clip(sub, 29) }));
    if (step) g.addEventListener("click", () => onPick(node.label));
    root.append(g);
  }
  return root;
}

function clip(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

function pickDefault(run) {
  const steps = run.StepRuns;
  const by = (code) => steps.find((s) => s.StatusCode === code);
  const own = steps.find((s) => !s.ReusedFrom && s.LogFolder);
  return (by("Failed") || by("Running") || own || steps[0] || {}).Name;
}

async function runPage(runId, stepName) {
  const mine = generation;
  const head = el("div");
  const graphBox = el("div", { id: "graph" });
  const panel = el("div", { class: "step-panel", id: "step" });
  show(el("p", {}, el("a", { href: "#/", text: "← all runs" })), head, graphBox, panel);
  let selected = stepName;
  let shownStep = null;

  const pick = (name) => {
    history.replaceState(null, "", `#/runs/${encodeURIComponent(runId)}/${encodeURIComponent(name)}`);
    selected = name;
    refresh();
  };

  const refresh = async () => {
    let run, graph;
    try {
      [run, graph] = await Promise.all([
        api(`/pipelines/v1.0/PipelineRuns/${encodeURIComponent(runId)}`),
        api(`/ui/api/runs/${encodeURIComponent(runId)}/graph`),
      ]);
    } catch (error) {
      if (mine === generation) failure(error);
      return;
    }
    if (mine !== generation) return;
    selected = selected || pickDefault(run);
    const st = run.Status;
    head.replaceChildren(
      el("div", { class: "run-head" },
        el("h2", { text: run.Id }), status(st.StatusCode),
        el("span", { class: "muted", text: `${run.PipelineName}` +
          (run.PipelineVersion !== null ? ` v${run.PipelineVersion}` : "") +
          ` · ${run.RunType} · experiment ${run.RunHistoryExperimentName}` }),
        el("span", { class: "muted", text: `started ${when(st.StartTime || st.CreationTime)}` +
          (run.DurationSeconds !== null ? ` · ${seconds(run.DurationSeconds)}` : "") })),
      el("div", {}, Object.entries(run.ParameterAssignments).map(
        ([k, v]) => el("span", { class: "tag", text: `${k} = ${v}` }))),
      ...(st.StatusDetail ? [el("pre", { class: "error", text: st.StatusDetail })] : []));
    graphBox.replaceChildren(drawGraph(graph, selected, pick));
    if (!graph.complete) {
      graphBox.append(el("p", { class: "muted", text: "(pipeline definition not found: steps only)" }));
    }
    const step = run.StepRuns.find((s) => s.Name === selected);
    if (step && (shownStep === null || shownStep.name !== selected)) {
      if (shownStep) shownStep.stop();
      shownStep = stepPanel(panel, runId, selected, mine);
    } else if (shownStep) {
      shownStep.update();
    }
    done = FINISHED.includes(st.StatusCode);
  };
  let done = false;
  await refresh();
  // While the run goes on, its graph and the step shown follow it; the logs tail themselves.
  every(2000, () => { if (!done) refresh(); });
}

function stepPanel(panel, runId, name, mine) {
  const base = `/ui/api/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(name)}`;
  const info = el("div");
  const logs = {};
  for (const stream of ["stdout", "stderr"]) {
    logs[stream] = { pre: el("pre", { id: `log-${stream}`, "data-stream": stream }), offset: 0,
      final: false };
  }
  panel.replaceChildren(
    el("h3", { text: `Step ${name}` }), info,
    el("div", { class: "logs" },
      ["stdout", "stderr"].map((s) => el("div", {}, el("h3", { text: `${s}.txt` }), logs[s].pre))));

  let alive = true;
  const live = () => alive && mine === generation;

  const detail = async () => {
    let d;
    try {
      d = await api(base);
    } catch (error) {
      info.replaceChildren(el("p", { class: "error", text: error.message }));
      return;
    }
    if (!live()) return;
    const rows = [
      ["Status", status(d.status)],
      ["Exit code", d.exit_code === null ? "" : String(d.exit_code)],
      ["Duration", seconds(d.duration_s)],
    ];
    if (d.reused_from) {
      const [run, step] = d.reused_from.split("/");
      rows.push(["Reused", el("span", {}, "outputs and logs of ", runLink(run, step))]);
    }
    if (d.why.length) {
      rows.push([d.reused_from ? "Why reused" : "Why it ran",
        el("ul", { class: "why" }, d.why.map((line) => el("li", { text: line })))]);
    }
    rows.push(["Command", d.command ? el("code", { text: d.command.line })
      : el("span", { class: "muted", text: "not started" })]);
    for (const [out, o] of Object.entries(d.outputs)) {
      rows.push([`Output ${out}`, el("div", {}, el("code", { text: o.path }),
        el("ul", {}, o.files.map((f) => el("li", {}, el("code", { text: f.name }),
          ` (${f.bytes} bytes)`)), o.more_files ? el("li", { text: `… ${o.more_files} more` }) : null))]);
    }
    if (d.summary) rows.push(["Summary", el("code", { text: JSON.stringify(d.summary) })]);
    info.replaceChildren(el("div", { class: "kv" }, rows.flat().map((c) => el("div", {}, c))));
  };

  const tail = async (stream) => {
    const log = logs[stream];
    while (!log.final && live()) {
      let chunk;
      try {
        chunk = await api(`${base}/logs/${stream}?offset=${log.offset}`);
      } catch (error) {
        log.pre.append(`\n[${error.message}]`);
        return;
      }
      if (!live()) return;
      if (chunk.text) {
        const atEnd = log.pre.scrollTop + log.pre.clientHeight >= log.pre.scrollHeight - 4;
        log.pre.append(chunk.text);
        if (atEnd) log.pre.scrollTop = log.pre.scrollHeight;
      }
      log.offset = chunk.offset;
      log.final = chunk.final;
      if (chunk.final && !log.pre.textContent) log.pre.append("(empty)");
      if (!chunk.final && chunk.offset >= chunk.size) await new Promise((r) => setTimeout(r, 1000));
    }
  };

  detail();
  tail("stdout");
  tail("stderr");
  return { name, update: detail, stop: () => { alive = false; } };
}

// --- navigation -----------------------------------------------------------------------------------

function route() {
  generation += 1;
  timers.forEach(clearInterval);
  timers = [];
  const m = location.hash.match(/^#\/runs\/([^/]+)(?:\/(.+))?$/);
  if (m) runPage(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : null);
  else home();
}

window.addEventListener("hashchange", route);
route();
