// Gantry live dashboard: jobs, their curves, alerts and drift, updated by
// push over Server-Sent Events (GET /events). Plain JavaScript, no build
// step; charts are Dygraphs (Debian libjs-dygraphs, /static/dygraph.min.js).
//
// Data flow: the page loads /api/jobs, /api/alerts, /api/drift and
// /api/deployments once, and /api/jobs/{id}/metrics for each job it charts;
// after that every change arrives as an SSE event (point, job_state, alert)
// and is applied in place; `serving` (a deployment's report, every second)
// and `drift` events reload the deployments panel (at most once a second).
// After the event stream reconnects, everything is loaded again (events may
// have been missed while it was down).
//
// For tests and tooling each chart container records what it drew:
// data-points (raw points drawn, all series), data-last-step (the largest
// step drawn for the first selected job) and data-job (the selected jobs).
'use strict';

(function () {
  // Chart key -> the metric names it draws (first one solid, others dashed).
  const CHARTS = {
    loss: ['loss', 'test_loss'],
    accuracy: ['accuracy', 'test_accuracy'],
    throughput: ['samples_per_second'],
  };
  // Names the workers use for the same metric.
  const ALIASES = { samples_per_sec: 'samples_per_second' };
  const STEP_TIME = 'step_time';  // per-rank value in point events
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#a16207', '#db2777'];
  // Ranks get other colours than jobs, so an overlay is not misread.
  const RANK_PALETTE = ['#0f766e', '#b45309', '#7c3aed', '#be123c', '#4d7c0f', '#0369a1', '#a21caf', '#525252'];
  const MAX_POINTS = 2000;        // asked of the server per series
  const KEEP_POINTS = 20000;      // in memory per series before thinning
  const REDRAW_MS = 100;          // at most one redraw per this interval

  const state = {
    jobs: [],                 // rows of /api/jobs, newest first
    data: new Map(),          // job id -> {series, ranks, loading, queued}
    selected: [],             // job ids; [0] is the primary job
    xAxis: 'step',
    smoothing: 0.6,
    alerts: new Map(),        // "rule|job|rank" -> alert
    drift: [],
    deployments: [],          // rows of /api/deployments
    charts: {},               // chart key -> Dygraph
    redrawTimer: null,
    lastDraw: 0,
    everOpen: false,
    live: true,               // subscribe to /events (off with #live=0)
    dashed: new Set(),        // series labels drawn dashed (for the legend)
    errors: [],               // uncaught script errors (tests assert none)
  };
  window.gantryDashboard = state;  // for debugging from the console
  window.addEventListener('error', (e) => {
    state.errors.push(String(e.message));
    document.body.dataset.errors = String(state.errors.length);
  });
  window.addEventListener('unhandledrejection', (e) => {
    state.errors.push(String(e.reason));
    document.body.dataset.errors = String(state.errors.length);
  });

  // ---------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, String(v));
      else if (k === 'title') e.title = v;
      else e[k] = v;
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // Seconds since the epoch from a number (s or ms) or an ISO string.
  function toSeconds(t) {
    if (typeof t === 'number') return t > 1e12 ? t / 1000 : t;
    if (typeof t === 'string' && t !== '') {
      const n = Number(t);
      if (Number.isFinite(n)) return toSeconds(n);
      const ms = Date.parse(t);
      if (Number.isFinite(ms)) return ms / 1000;
    }
    return NaN;
  }

  function ago(t) {
    const s = toSeconds(t);
    if (!Number.isFinite(s)) return '';
    const d = Math.max(0, Date.now() / 1000 - s);
    if (d < 60) return Math.floor(d) + 's ago';
    if (d < 3600) return Math.floor(d / 60) + 'm ago';
    if (d < 86400) return Math.floor(d / 3600) + 'h ago';
    return Math.floor(d / 86400) + 'd ago';
  }

  function clockTime(t) {
    const s = toSeconds(t);
    return Number.isFinite(s) ? new Date(s * 1000).toLocaleTimeString() : '';
  }

  function duration(sec) {
    if (!Number.isFinite(sec)) return '';
    const s = Math.round(sec);
    if (Math.abs(s) < 60) return s + 's';
    if (Math.abs(s) < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? String(s % 60).padStart(2, '0') : '');
    return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0');
  }

  function fmt(v) {
    if (typeof v !== 'number') return String(v);
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
    return a >= 100 ? v.toFixed(0) : v.toPrecision(4);
  }

  function rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
  }

  // A metric value as the API sends it: a number, null for NaN, or the
  // strings "+Inf" / "-Inf".
  function num(v) {
    if (typeof v === 'number') return v;
    if (v === '+Inf' || v === 'Inf' || v === 'Infinity') return Infinity;
    if (v === '-Inf' || v === '-Infinity') return -Infinity;
    return NaN;
  }

  async function getJson(url) {
    const r = await fetch(url, { cache: 'no-store' });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  // Debiased exponential moving average, as TensorBoard smooths scalars:
  // s_t = w*s_{t-1} + (1-w)*x_t, reported as s_t / (1 - w^t) so the first
  // points are not pulled towards 0. Non-finite values pass through.
  function smooth(values, w) {
    if (!(w > 0)) return values.slice();
    let last = 0;
    let n = 0;
    return values.map((v) => {
      if (!Number.isFinite(v)) return v;
      last = last * w + (1 - w) * v;
      n += 1;
      return last / (1 - Math.pow(w, n));
    });
  }

  window.gantrySmooth = smooth;  // exposed for the page's test

  // ------------------------------------------------------------------ data
  function jobData(id) {
    let d = state.data.get(id);
    if (!d) {
      d = { series: {}, ranks: {}, loading: null, queued: [], loaded: false };
      state.data.set(id, d);
    }
    return d;
  }

  // Appends [step, time, value] to a series; a step at or before the last
  // one (a job resumed from an older checkpoint) replaces what follows it.
  function append(arr, step, time, value) {
    if (arr.length > 0 && step <= arr[arr.length - 1][0]) {
      let i = arr.length;
      while (i > 0 && arr[i - 1][0] >= step) i -= 1;
      arr.length = i;
    }
    arr.push([step, time, value]);
    if (arr.length > KEEP_POINTS) {
      // Thin the older half by two, keep the recent half whole.
      const half = Math.floor(arr.length / 2);
      const old = arr.slice(0, half).filter((_, i) => i % 2 === 0);
      arr.splice(0, half, ...old);
    }
  }

  function applyPoint(d, p) {
    const step = Number(p.step);
    const time = toSeconds(p.time);
    const values = p.values || {};
    if (Number(p.rank || 0) === 0) {
      for (const [name, v] of Object.entries(values)) {
        const key = ALIASES[name] || name;
        append(d.series[key] || (d.series[key] = []), step, time, num(v));
      }
    }
    if (values[STEP_TIME] !== undefined) {
      const r = String(p.rank || 0);
      append(d.ranks[r] || (d.ranks[r] = []), step, time, num(values[STEP_TIME]));
    }
  }

  function loadMetrics(id) {
    const d = jobData(id);
    if (d.loading) return d.loading;
    d.loading = getJson(`/api/jobs/${encodeURIComponent(id)}/metrics?max_points=${MAX_POINTS}`)
      .then((m) => {
        d.series = {};
        d.ranks = {};
        for (const [name, pts] of Object.entries(m.series || {})) {
          const key = ALIASES[name] || name;
          d.series[key] = (pts || []).map((x) => [Number(x[0]), toSeconds(x[1]), num(x[2])]);
        }
        for (const [rank, pts] of Object.entries(m.rank_step_seconds || {})) {
          d.ranks[rank] = (pts || []).map((x) => [Number(x[0]), toSeconds(x[1]), num(x[2])]);
        }
        // Points pushed while the request was in flight.
        for (const p of d.queued) applyPoint(d, p);
        d.queued = [];
        d.loaded = true;
        d.error = null;
      })
      .catch((e) => { d.error = String(e.message || e); d.loaded = true; })
      .finally(() => { d.loading = null; scheduleRedraw(true); });
    return d.loading;
  }

  // ---------------------------------------------------------------- events
  function onPoint(p) {
    if (!p || p.job_id === undefined) return;
    const id = String(p.job_id);
    const job = state.jobs.find((j) => j.job_id === id);
    if (job) {
      if (Number(p.step) > Number(job.step || 0) || Number(p.rank || 0) === 0) job.step = Number(p.step);
      if (Number.isFinite(toSeconds(p.time))) job.updated = p.time;
      updateJobRow(job);
    } else {
      refreshJobsSoon();
    }
    const d = state.data.get(id);
    if (!d) return;  // not charted: loaded in full when selected
    if (d.loading) { d.queued.push(p); return; }
    applyPoint(d, p);
    if (state.selected.includes(id)) scheduleRedraw(false);
  }

  function onJobState(e) {
    if (!e || e.job_id === undefined) return;
    const job = state.jobs.find((j) => j.job_id === String(e.job_id));
    if (!job) { refreshJobsSoon(); return; }
    job.state = e.state;
    if (e.attempt !== undefined && e.attempt !== null) job.attempt = e.attempt;
    if (e.reason) job.reason = e.reason;
    if (Number.isFinite(toSeconds(e.time))) job.updated = e.time;
    updateJobRow(job);
  }

  function alertKey(a) { return `${a.rule}|${a.job_id || ''}|${a.rank === undefined ? '' : a.rank}`; }

  function onAlert(a) {
    if (!a || a.rule === undefined) return;
    state.alerts.set(alertKey(a), a);
    renderAlerts();
    loadDrift();  // a drift rule may have fired on a new result
  }

  let jobsTimer = null;
  function refreshJobsSoon() {
    if (jobsTimer) return;
    jobsTimer = setTimeout(() => { jobsTimer = null; loadJobs(); }, 300);
  }

  let deploymentsTimer = null;
  function refreshDeploymentsSoon() {
    if (deploymentsTimer) return;
    deploymentsTimer = setTimeout(() => { deploymentsTimer = null; loadDeployments(); }, 1000);
  }

  function connect() {
    const es = new EventSource('/events');
    const conn = $('conn');
    es.onopen = () => {
      conn.dataset.state = 'live';
      conn.textContent = 'live';
      document.body.dataset.sse = 'open';
      if (state.everOpen) reloadAll();  // reconnected: catch up
      state.everOpen = true;
    };
    es.onerror = () => {
      conn.dataset.state = 'down';
      conn.textContent = 'reconnecting…';
      document.body.dataset.sse = 'down';
    };
    const on = (name, f) => es.addEventListener(name, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (_) { return; }
      f(data);
    });
    on('point', onPoint);
    on('job_state', onJobState);
    on('alert', onAlert);
    on('drift', () => { loadDrift(); refreshDeploymentsSoon(); });
    on('serving', refreshDeploymentsSoon);
  }

  // --------------------------------------------------------------- loading
  async function loadJobs() {
    try {
      const r = await getJson('/api/jobs');
      state.jobs = (r.jobs || []).map((j) => ({ ...j, job_id: String(j.job_id) }));
      $('jobs').dataset.error = '';
    } catch (e) {
      $('jobs').dataset.error = String(e.message || e);
    }
    if (state.selected.length === 0 && state.jobs.length > 0) state.selected = [state.jobs[0].job_id];
    renderJobs();
    selectionChanged();
  }

  async function loadAlerts() {
    try {
      const r = await getJson('/api/alerts');
      state.alerts = new Map((r.alerts || []).map((a) => [alertKey(a), a]));
    } catch (_) { /* shown as empty */ }
    renderAlerts();
  }

  async function loadDrift() {
    try {
      const r = await getJson('/api/drift');
      state.drift = r.results || [];
    } catch (_) { /* shown as empty */ }
    renderDrift();
  }

  async function loadDeployments() {
    try {
      const r = await getJson('/api/deployments');
      state.deployments = r.deployments || [];
    } catch (_) { /* shown as empty */ }
    renderDeployments();
  }

  function reloadAll() {
    for (const d of state.data.values()) d.loaded = false;
    state.data.clear();
    return Promise.all([loadJobs(), loadAlerts(), loadDrift(), loadDeployments()]);
  }

  // -------------------------------------------------------------- rendering
  function stateBadge(s, title) {
    return el('span', { class: `badge state-${String(s || 'unknown').toLowerCase()}`, title }, s || '?');
  }

  function jobColor(id) {
    const i = state.selected.indexOf(id);
    return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
  }

  function progressCell(job) {
    const step = Number(job.step || 0);
    const total = Number(job.total_steps || 0);
    const pct = total > 0 ? Math.min(100, (100 * step) / total) : 0;
    return el('td', { class: 'progress' },
      el('div', { class: 'bar' }, el('div', { class: 'fill', style: `width:${pct.toFixed(1)}%` })),
      el('span', { class: 'step' }, total > 0 ? `${step} / ${total}` : String(step)));
  }

  function jobRow(job) {
    const id = job.job_id;
    const selected = state.selected.includes(id);
    const box = el('input', { type: 'checkbox', checked: selected, title: 'overlay this job' });
    box.addEventListener('click', (ev) => {
      ev.stopPropagation();
      if (box.checked && !state.selected.includes(id)) state.selected.push(id);
      if (!box.checked) state.selected = state.selected.filter((x) => x !== id);
      renderJobs();
      selectionChanged();
    });
    const swatch = selected ? el('span', { class: 'swatch', style: `background:${jobColor(id)}` }) : null;
    const rowClass = state.selected[0] === id ? 'primary' : (selected ? 'overlay' : '');
    const name = job.name ? el('div', { class: 'name', title: job.name }, job.name) : null;
    const tr = el('tr', { 'data-job-id': id, class: rowClass },
      el('td', {}, box),
      el('td', { class: 'job' }, swatch, el('span', { class: 'id' }, id), name),
      el('td', {}, stateBadge(job.state, job.reason)),
      el('td', { class: 'num' }, job.attempt === undefined ? '' : job.attempt),
      progressCell(job),
      el('td', { class: 'updated', 'data-time': job.updated }, ago(job.updated)));
    tr.addEventListener('click', () => {
      state.selected = [id];
      renderJobs();
      selectionChanged();
    });
    return tr;
  }

  function renderJobs() {
    const body = $('jobs').tBodies[0];
    body.replaceChildren(...state.jobs.map(jobRow));
    if (state.jobs.length === 0) body.append(el('tr', {}, el('td', { colSpan: 6, class: 'empty' }, 'no jobs yet')));
  }

  function updateJobRow(job) {
    const old = $('jobs').querySelector(`tr[data-job-id="${CSS.escape(job.job_id)}"]`);
    if (old) old.replaceWith(jobRow(job));
  }

  function renderAlerts() {
    const order = { firing: 0, pending: 1, resolved: 2, inactive: 3 };
    const alerts = [...state.alerts.values()].sort((a, b) =>
      (order[a.state] ?? 4) - (order[b.state] ?? 4) || toSeconds(b.since) - toSeconds(a.since));
    const body = $('alerts').tBodies[0];
    const hasRank = (a) => a.rank !== undefined && a.rank !== null && a.rank !== -1;
    body.replaceChildren(...alerts.map((a) => el('tr',
      { class: `sev-${a.severity || 'warning'} st-${a.state}`, 'data-rule': a.rule },
      el('td', {}, a.rule),
      el('td', {}, a.job_id || '', hasRank(a) ? el('span', { class: 'muted' }, ` r${a.rank}`) : null),
      el('td', {}, stateBadge(a.state)),
      el('td', { title: clockTime(a.since) }, ago(a.since)),
      el('td', { class: 'why' }, a.why || ''))));
    if (alerts.length === 0) body.append(el('tr', {}, el('td', { colSpan: 5, class: 'empty' }, 'no alerts')));
    const firing = alerts.filter((a) => a.state === 'firing').length;
    $('firing').hidden = firing === 0;
    $('firing').textContent = `${firing} firing`;
  }

  function renderDrift() {
    const results = [...state.drift].sort((a, b) => toSeconds(b.time) - toSeconds(a.time));
    const body = $('drift').tBodies[0];
    body.replaceChildren(...results.map((r) => {
      const top = (r.features || []).slice(0, 3)
        .map((f) => `${f.feature} (${fmt(Number(f.statistic))})`).join(', ');
      return el('tr', { class: r.drifted ? 'drifted' : '' },
        el('td', {}, r.dataset, r.drifted ? el('span', { class: 'badge state-firing' }, 'drift') : null),
        el('td', { title: clockTime(r.time) }, ago(r.time)),
        el('td', { class: 'num' }, Number.isFinite(Number(r.share)) ? `${(100 * Number(r.share)).toFixed(1)}%` : ''),
        el('td', { class: 'why' }, top));
    }));
    if (results.length === 0) body.append(el('tr', {}, el('td', { colSpan: 4, class: 'empty' }, 'no drift results')));
  }

  function renderDeployments() {
    const body = $('deployments').tBodies[0];
    const pct = (v) => (v === null || v === undefined || !Number.isFinite(Number(v)) ? '–' : `${(100 * Number(v)).toFixed(1)}%`);
    const ms = (v) => (v === null || v === undefined ? '–' : `${(1000 * Number(v)).toFixed(Number(v) < 0.01 ? 2 : 1)} ms`);
    body.replaceChildren(...state.deployments.map((d) => {
      const drift = d.drift;
      const errTitle = Object.entries(d.errors_by_code || {}).map(([c, n]) => `${c}: ${n}`).join(', ');
      return el('tr', { class: drift && drift.drifted ? 'drifted' : '', 'data-deployment': d.deployment },
        el('td', { title: `${d.requests} requests, mean batch ${fmt(Number(d.batch_size_mean))}` },
          `${d.deployment}/${d.model}`),
        el('td', {}, `v${d.version}`),
        el('td', { class: 'num' }, d.request_rate === null ? '–' : fmt(Number(d.request_rate))),
        el('td', { class: 'num', title: `p50 ${ms(d.latency_p50_seconds)}` }, ms(d.latency_p99_seconds)),
        el('td', { class: 'num', title: errTitle || 'no errors' }, `${d.errors}`),
        el('td', { class: 'num', title: `${d.feedback_window} labelled in the window` }, pct(d.accuracy)),
        el('td', { class: 'num', title: drift ? `${drift.file}: ${drift.drifted_features} of ${drift.tested} features` : 'no window yet' },
          drift ? pct(drift.share) : '–',
          drift && drift.drifted ? el('span', { class: 'badge state-firing' }, 'drift') : null));
    }));
    if (state.deployments.length === 0) body.append(el('tr', {}, el('td', { colSpan: 7, class: 'empty' }, 'no deployments report')));
  }

  // ----------------------------------------------------------------- charts
  // x value of a [step, time, value] point on the current axis (relative
  // time in minutes, so Dygraphs picks ticks at whole minutes).
  function xOf(pt, t0) {
    if (state.xAxis === 'wall') return new Date(pt[1] * 1000);
    if (state.xAxis === 'relative') return (pt[1] - t0) / 60;  // minutes: round ticks
    return pt[0];
  }

  // The series a chart draws: [{label, points, color, dashed, job}].
  function chartSeries(key) {
    const out = [];
    if (key === 'ranks') {
      const id = state.selected[0];
      const d = id === undefined ? null : state.data.get(id);
      if (!d) return out;
      Object.keys(d.ranks).sort((a, b) => Number(a) - Number(b)).forEach((rank, i) => {
        const color = RANK_PALETTE[i % RANK_PALETTE.length];
        out.push({ label: `rank ${rank}`, points: d.ranks[rank], color, job: id });
      });
      return out;
    }
    const many = state.selected.length > 1;
    for (const id of state.selected) {
      const d = state.data.get(id);
      if (!d) continue;
      CHARTS[key].forEach((name, i) => {
        const pts = d.series[name];
        if (!pts || pts.length === 0) return;
        out.push({ label: many ? `${id} ${name}` : name, points: pts, color: jobColor(id), dashed: i > 0, job: id });
      });
    }
    return out;
  }

  function jobStart(id) {
    const d = state.data.get(id);
    let t0 = Infinity;
    if (!d) return 0;
    for (const pts of [...Object.values(d.series), ...Object.values(d.ranks)]) {
      if (pts.length) t0 = Math.min(t0, pts[0][1]);
    }
    return Number.isFinite(t0) ? t0 : 0;
  }

  // Merges the series into Dygraphs' row format: [x, y1, y2, ...] sorted by
  // x, null where a series has no point at that x. With smoothing each
  // series gives two columns: smoothed (solid) and raw (faint).
  function buildTable(series) {
    const withRaw = state.smoothing > 0;
    const cols = withRaw ? 2 : 1;
    const rows = new Map();
    let drawn = 0;
    series.forEach((s, i) => {
      const t0 = jobStart(s.job);
      const ys = s.points.map((p) => p[2]);
      const sm = smooth(ys, state.smoothing);
      s.points.forEach((p, j) => {
        const x = xOf(p, t0);
        const k = x instanceof Date ? x.getTime() : x;
        if (!Number.isFinite(k)) return;
        let row = rows.get(k);
        if (!row) { row = new Array(1 + series.length * cols).fill(null); row[0] = x; rows.set(k, row); }
        row[1 + i * cols] = Number.isFinite(sm[j]) ? sm[j] : null;
        if (withRaw) row[2 + i * cols] = Number.isFinite(ys[j]) ? ys[j] : null;
        if (Number.isFinite(ys[j])) drawn += 1;  // NaN and ±Inf leave a gap
      });
    });
    const table = [...rows.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]);
    const labels = ['x'];
    const colors = [];
    const opts = {};
    for (const s of series) {
      labels.push(s.label);
      colors.push(s.color);
      opts[s.label] = { strokeWidth: 1.8, strokePattern: s.dashed ? [6, 3] : null };
      if (s.dashed) state.dashed.add(s.label);
      if (withRaw) {
        const raw = `${s.label} (raw)`;
        labels.push(raw);
        colors.push(rgba(s.color, 0.28));
        opts[raw] = { strokeWidth: 1, strokePattern: s.dashed ? [6, 3] : null };
      }
    }
    return { table, labels, colors, opts, drawn };
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  // The legend without the raw (unsmoothed) twins; each key drawn with its
  // series' colour and dash.
  function legendFormatter(data) {
    const key = (s) => {
      const style = state.dashed.has(s.label) ? 'dashed' : 'solid';
      // Labels hold job ids and metric names from the network: escaped here.
      return `<span class="line" style="border-top-color:${s.color};border-top-style:${style}"></span>${escapeHtml(s.label)}`;
    };
    const shown = (data.series || []).filter((s) => s.isVisible && !s.label.endsWith(' (raw)'));
    if (data.x == null) return shown.map((s) => `<span class="key">${key(s)}</span>`).join('');
    return `<span class="x">${data.xHTML}</span>` + shown
      .filter((s) => s.yHTML !== undefined)
      .map((s) => `<span class="key">${key(s)}: <b>${s.yHTML}</b></span>`).join('');
  }

  function xFormatter(x) {
    if (state.xAxis === 'relative') return duration(60 * Number(x));
    if (state.xAxis === 'wall') return new Date(x).toLocaleTimeString();
    return String(Math.round(Number(x)));
  }

  function drawChart(key) {
    const div = $(`chart-${key}`);
    const series = chartSeries(key);
    const { table, labels, colors, opts, drawn } = buildTable(series);
    const primary = state.selected[0];
    let lastStep = -Infinity;
    for (const s of series) {
      if (s.job === primary && s.points.length) lastStep = Math.max(lastStep, s.points[s.points.length - 1][0]);
    }
    div.dataset.job = state.selected.join(',');
    div.dataset.lastStep = Number.isFinite(lastStep) ? String(lastStep) : '';
    let g = state.charts[key];
    if (table.length === 0 || typeof window.Dygraph !== 'function') {
      if (g) { g.destroy(); delete state.charts[key]; }
      const d = primary === undefined ? null : state.data.get(primary);
      let msg = 'no data';
      if (typeof window.Dygraph !== 'function') {
        msg = 'charts unavailable: /static/dygraph.min.js did not load (install libjs-dygraphs)';
      }
      else if (primary === undefined) msg = 'select a job';
      else if (d && d.error) msg = d.error;
      else if (d && !d.loaded) msg = 'loading…';
      div.replaceChildren(el('div', { class: 'placeholder' }, msg));
      div.dataset.points = '0';
      $(`legend-${key}`).replaceChildren();
      return;
    }
    const options = {
      file: table,
      labels,
      colors,
      series: opts,
      connectSeparatedPoints: true,
      strokeWidth: 1.6,
      legend: 'always',
      labelsDiv: $(`legend-${key}`),
      legendFormatter,
      labelsKMB: key === 'throughput',
      gridLineColor: '#e5e7eb',
      axisLineColor: '#9ca3af',
      axisLabelFontSize: 11,
      xlabel: state.xAxis === 'step' ? 'step' : (state.xAxis === 'relative' ? 'time since start' : 'wall time'),
      xLabelHeight: 14,
      // Dates get Dygraphs' own date ticks; the legend shows the clock time.
      axes: { x: state.xAxis === 'wall' ? { valueFormatter: xFormatter }
        : { axisLabelFormatter: xFormatter, valueFormatter: xFormatter } },
    };
    if (!g) {
      div.replaceChildren();
      const { file, ...rest } = options;
      g = state.charts[key] = new window.Dygraph(div, file, rest);
    } else {
      g.updateOptions(options);
    }
    div.dataset.points = String(drawn);
  }

  function redraw() {
    state.redrawTimer = null;
    state.lastDraw = performance.now();
    for (const key of [...Object.keys(CHARTS), 'ranks']) {
      try {
        drawChart(key);
      } catch (e) {  // one broken chart must not stop the others
        state.errors.push(`chart ${key}: ${e && e.message}`);
        document.body.dataset.errors = String(state.errors.length);
        if (state.charts[key]) { try { state.charts[key].destroy(); } catch (_) { /* already broken */ } }
        delete state.charts[key];
        $(`chart-${key}`).replaceChildren(el('div', { class: 'placeholder' }, `chart error: ${e && e.message}`));
      }
    }
    $('ranks-job').textContent = state.selected[0] ? `· ${state.selected[0]}` : '';
  }

  // Redraws now (a new point shows at once), or after REDRAW_MS when points
  // stream in faster than that.
  function scheduleRedraw(now) {
    if (state.redrawTimer) return;
    const wait = now ? 0 : Math.max(0, REDRAW_MS - (performance.now() - state.lastDraw));
    state.redrawTimer = setTimeout(redraw, wait);
  }

  function selectionChanged() {
    const s = state.selected;
    $('selection').textContent = s.length === 0 ? 'no job selected'
      : (s.length === 1 ? s[0] : `${s[0]} + ${s.length - 1} overlaid`);
    for (const id of s) {
      const d = state.data.get(id);
      if (!d || (!d.loaded && !d.loading)) loadMetrics(id);
    }
    saveHash();
    scheduleRedraw(true);
  }

  // ------------------------------------------------------ URL and controls
  // The view lives in the URL hash (#jobs=a,b&x=step&smooth=0.6), so a view
  // can be bookmarked or screenshotted.
  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    if (h.get('jobs')) state.selected = h.get('jobs').split(',').filter(Boolean);
    if (['step', 'relative', 'wall'].includes(h.get('x'))) state.xAxis = h.get('x');
    // live=0: no event stream, a still page (headless screenshots with
    // --virtual-time-budget wait for the network to go idle).
    state.live = h.get('live') !== '0';
    const w = Number(h.get('smooth'));
    if (h.has('smooth') && w >= 0 && w < 1) state.smoothing = w;
  }

  function saveHash() {
    const h = new URLSearchParams();
    if (state.selected.length) h.set('jobs', state.selected.join(','));
    h.set('x', state.xAxis);
    h.set('smooth', String(state.smoothing));
    if (!state.live) h.set('live', '0');
    history.replaceState(null, '', '#' + h.toString());
  }

  function setupControls() {
    const x = $('x-axis');
    x.value = state.xAxis;
    x.addEventListener('change', () => {
      state.xAxis = x.value;
      // A new axis type needs a fresh chart (Dygraphs keeps its x scale).
      for (const g of Object.values(state.charts)) g.destroy();
      state.charts = {};
      saveHash();
      scheduleRedraw(true);
    });
    const w = $('smoothing');
    w.value = String(state.smoothing);
    $('smoothing-value').textContent = state.smoothing.toFixed(2);
    w.addEventListener('input', () => {
      state.smoothing = Number(w.value);
      $('smoothing-value').textContent = state.smoothing.toFixed(2);
      saveHash();
      scheduleRedraw(true);
    });
  }

  function tick() {
    $('clock').textContent = new Date().toLocaleString();
    for (const td of document.querySelectorAll('td.updated[data-time]')) td.textContent = ago(td.dataset.time);
  }

  async function start() {
    $('cluster').textContent = location.host;
    document.title = `Gantry · ${location.host}`;
    readHash();
    setupControls();
    tick();
    setInterval(tick, 1000);
    if (state.live) {
      connect();
    } else {
      $('conn').dataset.state = 'still';
      $('conn').textContent = 'not live (#live=0)';
    }
    await Promise.all([loadJobs(), loadAlerts(), loadDrift(), loadDeployments()]);
    document.body.dataset.ready = '1';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
