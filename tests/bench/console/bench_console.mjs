// The driver of tests/bench/console/bench_console (which starts the
// coordinator and its fleet and owns the clean-up): first loads of the
// overview in headless Chromium, then the coordinator's CPU in four phases.
//
// First load: a new browser context each time (empty cache) holding only the
// session cookie; from the navigation's start (performance.timeOrigin) until
// the frame showing every group row and every sparkline has been painted
// (checked on each animation frame; the time they were first all in the
// document is kept too). Requests and bytes are those the page made until then
// (Playwright's request sizes: headers + body as received); the server's
// timings of each request are the browser's resource timing entries.
//
// CPU: utime + stime of the coordinator (/proc/<pid>/stat) over each phase
// divided by its wall time, as % of one core: (a) no console, no change;
// (b) no console, one change per second through the API (protection of one
// instance toggled); (c) --pages consoles open (--group-pages of them on the
// changed group's page, the rest on the overview), no change; (d) the same
// consoles and one change per second. Every page counts the `change` events
// its EventSource receives and the requests it makes, so a phase shows that
// the consoles were live and what they read.
//
// To explain a first load, beside its time: the CPU Chromium's processes
// (and the renderer's threads) and the coordinator spent on it; the main
// thread's long tasks and JSON.parse calls; one extra load traced (not
// counted) with the main thread's self time by event and its tasks; a load
// of a small text file in a new context (what a context and a renderer cost
// alone); and the page's API requests asked again from here, one at a time.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string' },
    token: { type: 'string' },
    pid: { type: 'string' },
    hz: { type: 'string', default: '100' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    groups: { type: 'string', default: '100' },
    'per-group': { type: 'string', default: '20' },
    loads: { type: 'string', default: '5' },
    'cpu-seconds': { type: 'string', default: '60' },
    pages: { type: 'string', default: '10' },
    'group-pages': { type: 'string', default: '5' },
    group: { type: 'string' },
    instance: { type: 'string' },
    'setup-seconds': { type: 'string', default: '0' },
    backfill: { type: 'string', default: '1' },
    'time-limit-s': { type: 'string', default: '500' },
    'skip-cpu': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const base = opt.base;
const pid = Number(opt.pid);
const hz = Number(opt.hz);
const nGroups = Number(opt.groups);
const perGroup = Number(opt['per-group']);
const nLoads = Number(opt.loads);
const cpuSeconds = Number(opt['cpu-seconds']);
const nPages = Number(opt.pages);
const nGroupPages = Math.min(Number(opt['group-pages']), nPages);
const group = opt.group;
const instance = opt.instance;
const hardDeadline = Date.now() + Number(opt['time-limit-s']) * 1000;

const log = (text) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(digits)));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const checkTime = (what) => {
  if (Date.now() > hardDeadline) throw new Error(`out of time before ${what}`);
};

// ---- the coordinator's CPU and the machine's load ---------------------------------

function processTicks() {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14..17 of proc(5): utime, stime, cutime, cstime.
  return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

// CPU ticks of all descendants of a process (of this driver: Chromium, its
// GPU, network and renderer processes).
// By Chromium's process type (--type=renderer, gpu-process, utility, ...;
// "browser" without one).
function chromiumTicks(root) {
  const parent = new Map();
  const ticks = new Map();
  const kinds = new Map();
  const threadTicks = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(f[1]));
      ticks.set(Number(name), Number(f[11]) + Number(f[12]));
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const type = /--type=([a-z-]+)/.exec(cmdline);
      const service = /--utility-sub-type=([A-Za-z.]+)/.exec(cmdline);
      const kind = type ? (service ? service[1].split('.').pop() : type[1]) : 'browser';
      kinds.set(Number(name), kind);
      if (kind === 'renderer') {
        // A renderer's threads by name: main, compositor, raster, V8 workers.
        for (const tid of readdirSync(`/proc/${name}/task`)) {
          const ts = readFileSync(`/proc/${name}/task/${tid}/stat`, 'utf8');
          const comm = ts.slice(ts.indexOf('(') + 1, ts.lastIndexOf(')')).replace(/[0-9]+$/, '');
          const tf = ts.slice(ts.lastIndexOf(')') + 2).split(' ');
          threadTicks.set(`${name}/${tid}`, { comm, ticks: Number(tf[11]) + Number(tf[12]), pid: Number(name) });
        }
      }
    } catch {
      /* gone meanwhile */
    }
  }
  const byKind = { all: 0 };
  const ours = new Set();
  for (const [pid, t] of ticks) {
    for (let p = parent.get(pid) ?? 0, depth = 0; p > 1 && depth < 20; p = parent.get(p) ?? 0, depth++) {
      if (p === root) {
        ours.add(pid);
        byKind.all += t;
        byKind[kinds.get(pid)] = (byKind[kinds.get(pid)] || 0) + t;
        break;
      }
    }
  }
  for (const { comm, ticks: t, pid } of threadTicks.values()) {
    if (!ours.has(pid)) continue;
    const key = `renderer:${comm}`;
    byKind[key] = (byKind[key] || 0) + t;
  }
  return byKind;
}

// after - before, in ms, by kind.
const ticksToMs = (before, after) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, round(((after[k] - (before[k] || 0)) / hz) * 1000, 0)]));

function machineTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + line[4];
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total };
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

// ---- the API, with the bearer token ---------------------------------------------------

async function api(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${opt.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// ---- the browser -------------------------------------------------------------------------

// In every page: count the event stream's messages (wrapping EventSource
// before the console's script runs).
const countEvents = () => {
  window.__bench = { hello: 0, changes: 0, items: 0 };
  const Native = window.EventSource;
  window.EventSource = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('hello', () => window.__bench.hello++);
      this.addEventListener('change', (event) => {
        window.__bench.changes++;
        try {
          window.__bench.items += JSON.parse(event.data).changes.length;
        } catch {
          /* counted anyway */
        }
      });
    }
  };
};

// In a first-load page: the main thread's long tasks and the time of every
// JSON.parse of more than 10 KB (the console parses each API answer so).
const watchMainThread = () => {
  window.__load = { longTasks: [], parses: [] };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__load.longTasks.push([Math.round(e.startTime), Math.round(e.duration)]);
    }).observe({ type: 'longtask', buffered: true });
  } catch {
    /* no long task timing */
  }
  const parse = JSON.parse;
  JSON.parse = function (text, reviver) {
    if (typeof text !== 'string' || text.length < 10240) return parse(text, reviver);
    const t0 = performance.now();
    const value = parse(text, reviver);
    window.__load.parses.push([Math.round(t0), Math.round((performance.now() - t0) * 10) / 10, text.length]);
    return value;
  };
};

// A first load is done when the frame that shows every row and sparkline
// has been painted: the check runs in an animation frame callback, and a task
// posted from there runs after that frame's style, layout and paint.
const overviewPainted = (n) => {
  if (window.__painted) return window.__painted;
  if (!window.__domReady) {
    const rows = document.querySelectorAll('[data-testid^="group-row-"]').length;
    const sparks = document.querySelectorAll('svg[data-testid^="sparkline-"]').length;
    if (rows === n && sparks === n) {
      window.__domReady = performance.now();
      setTimeout(() => {
        window.__painted = performance.now();
      }, 0);
    }
  }
  return false;
};

const overviewReady = (n) => {
  const rows = document.querySelectorAll('[data-testid^="group-row-"]').length;
  const sparks = document.querySelectorAll('svg[data-testid^="sparkline-"]').length;
  return rows === n && sparks === n ? performance.now() : false;
};

async function login(browser) {
  const context = await browser.newContext();
  const response = await context.request.post(`${base}/console/login`, {
    headers: { 'X-Tide-Console': '1' },
    data: { token: opt.token },
  });
  if (response.status() !== 204) throw new Error(`POST /console/login: HTTP ${response.status()}`);
  const state = await context.storageState();
  await context.close();
  if (!state.cookies.some((c) => c.name === 'tide_console')) throw new Error('no tide_console cookie after login');
  return state;
}

const pathOf = (url) => {
  const u = new URL(url);
  return u.pathname + u.search;
};

// Self time by trace event name on the page's renderer main thread, from
// the request of /console/ to `untilMs` after it: where the main thread's
// time went (script compile and run, style, layout, paint, GC).
function mainThreadBreakdown(trace, untilMs) {
  const events = JSON.parse(trace.toString('utf8')).traceEvents;
  const threads = new Map();
  const threadNames = new Map();
  for (const e of events) {
    if (e.ph === 'M' && e.name === 'thread_name') threadNames.set(`${e.pid}:${e.tid}`, String(e.args.name).replace(/[0-9]+$/, ''));
  }
  for (const e of events) {
    if (e.ph === 'M' && e.name === 'thread_name' && e.args.name === 'CrRendererMain') threads.set(`${e.pid}:${e.tid}`, []);
  }
  for (const e of events) {
    const key = `${e.pid}:${e.tid}`;
    if (e.ph === 'X' && threads.has(key)) threads.get(key).push(e);
  }
  // The renderer that ran the console's script.
  let main = null;
  for (const list of threads.values()) {
    if (list.some((e) => e.name === 'EvaluateScript' && String(e.args?.data?.url || '').includes('/console/app.js'))) main = list;
  }
  const start = events.find((e) => e.name === 'ResourceSendRequest' && String(e.args?.data?.url || '').endsWith('/console/'));
  if (!main || !start) return null;
  const t0 = start.ts;
  const t1 = t0 + untilMs * 1000;
  main.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  // Self time: an event's time less its children's, in thread CPU time
  // (tdur) and in wall time (dur); on a busy machine the two differ by the
  // time the thread waited for a core.
  const self = {};
  const stack = [];
  let busyWall = 0;
  let busyCpu = 0;
  const close = (until) => {
    while (stack.length && stack[stack.length - 1].end <= until) stack.pop();
  };
  for (const e of main) {
    if (e.ts < t0 || e.ts > t1) continue;
    close(e.ts);
    const wall = e.dur || 0;
    const cpu = e.tdur ?? wall;
    if (stack.length) {
      const parent = self[stack[stack.length - 1].name];
      parent.wall -= wall;
      parent.cpu -= cpu;
    } else {
      busyWall += wall;
      busyCpu += cpu;
    }
    const entry = (self[e.name] ||= { wall: 0, cpu: 0 });
    entry.wall += wall;
    entry.cpu += cpu;
    stack.push({ name: e.name, end: e.ts + wall });
  }
  const top = Object.entries(self).filter(([, v]) => v.cpu >= 2000).sort((a, b) => b[1].cpu - a[1].cpu)
    .map(([name, v]) => [name, round(v.cpu / 1000)]);
  // The main thread's top-level tasks of more than 20 ms, from the request
  // of /console/: when it was busy and with what.
  const tasks = [];
  for (const e of main) {
    if (e.ts < t0 || e.ts > t1 || (e.dur || 0) < 20000) continue;
    if (tasks.length && e.ts < tasks[tasks.length - 1].end_us) continue;
    const inner = main.filter((c) => c !== e && c.ts >= e.ts && c.ts + (c.dur || 0) <= e.ts + e.dur && (c.dur || 0) >= 5000)
      .sort((a, b) => b.dur - a.dur).slice(0, 4).map((c) => `${c.name} ${round(c.dur / 1000)}`);
    tasks.push({ at_ms: round((e.ts - t0) / 1000), wall_ms: round(e.dur / 1000), cpu_ms: round((e.tdur ?? e.dur) / 1000),
                 inner: inner.join(', '), end_us: e.ts + e.dur });
  }
  for (const task of tasks) delete task.end_us;
  // The renderer's other threads (V8's background compiles and GC, raster):
  // CPU of their top-level events in the window, and what took most.
  const mainPid = main[0].pid;
  const others = {};
  const perThread = new Map();
  for (const e of events) {
    if (e.pid !== mainPid || e.ph !== 'X' || e.ts < t0 || e.ts > t1) continue;
    const name = threadNames.get(`${e.pid}:${e.tid}`) || 'unnamed';
    if (name === 'CrRendererMain') continue;
    if (!perThread.has(e.tid)) perThread.set(e.tid, { name, list: [] });
    perThread.get(e.tid).list.push(e);
  }
  for (const { name, list } of perThread.values()) {
    list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    let end = -1;
    const entry = (others[name] ||= { cpu_ms: 0, top: {} });
    for (const e of list) {
      if (e.ts < end) continue;  // nested in a top-level event already counted
      end = e.ts + (e.dur || 0);
      const cpu = (e.tdur ?? e.dur ?? 0) / 1000;
      entry.cpu_ms += cpu;
      entry.top[e.name] = (entry.top[e.name] || 0) + cpu;
    }
  }
  for (const entry of Object.values(others)) {
    entry.cpu_ms = round(entry.cpu_ms);
    entry.top = Object.fromEntries(Object.entries(entry.top).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => [k, round(v)]));
  }
  return { busy_wall_ms: round(busyWall / 1000), busy_cpu_ms: round(busyCpu / 1000), self_cpu_ms: Object.fromEntries(top), tasks,
           other_threads: others };
}

async function firstLoad(browser, storageState, run, { trace = false } = {}) {
  const context = await browser.newContext({ storageState });
  await context.addInitScript(watchMainThread);
  const page = await context.newPage();
  if (trace) {
    await browser.startTracing(page, {
      categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'v8.execute', 'blink', 'loading', '__metadata'],
    });
  }
  const requests = [];
  page.on('request', (request) => requests.push(request));
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const browserPid = process.pid;
  const b0 = chromiumTicks(browserPid);
  const c0 = processTicks();
  const t0 = performance.now();
  await page.goto(`${base}/console/`, { waitUntil: 'commit', timeout: 30000 });
  const handle = await page.waitForFunction(overviewPainted, nGroups, { polling: 'raf', timeout: 30000 });
  const readyMs = await handle.jsonValue();
  const domReadyMs = await page.evaluate(() => window.__domReady);
  const wallMs = performance.now() - t0;
  const c1 = processTicks();
  const b1 = chromiumTicks(browserPid);
  const atReady = requests.slice();
  const mainThread = trace ? mainThreadBreakdown(await browser.stopTracing(), wallMs + 100) : null;
  const load = await page.evaluate(() => window.__load);
  const details = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
    const resources = performance.getEntriesByType('resource').map((r) => ({
      url: r.name,
      start: r.startTime,
      ttfb: r.responseStart - r.startTime,
      duration: r.duration,
      end: r.responseEnd,
      transfer: r.transferSize,
      body: r.encodedBodySize,
    }));
    const points = [...document.querySelectorAll('svg[data-testid^="sparkline-"]')].map((s) => Number(s.dataset.points));
    return {
      navigation: { ttfb: nav.responseStart, responseEnd: nav.responseEnd, domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, transfer: nav.transferSize },
      paint,
      resources,
      sparkline_points_min: Math.min(...points),
      sparkline_points_max: Math.max(...points),
      total_instances: document.querySelector('[data-testid="total-instances"]')?.textContent,
    };
  });
  let bytes = 0;
  const perRequest = [];
  for (const request of atReady) {
    const path = pathOf(request.url());
    if (path.startsWith('/v1/events')) {
      perRequest.push({ path, bytes: null, note: 'stream, open' });
      continue;
    }
    const sizes = await request.sizes().catch(() => null);
    const size = sizes ? sizes.responseHeadersSize + sizes.responseBodySize : 0;
    bytes += size;
    const timing = details.resources.find((r) => r.url === request.url());
    perRequest.push({
      path,
      bytes: size,
      start_ms: timing ? round(timing.start) : round(details.navigation.ttfb),
      ttfb_ms: timing ? round(timing.ttfb) : round(details.navigation.ttfb),
      end_ms: timing ? round(timing.end) : round(details.navigation.responseEnd),
    });
  }
  await context.close();
  const result = {
    run,
    ready_ms: round(readyMs),
    in_document_ms: round(domReadyMs),
    wall_ms: round(wallMs),
    requests: atReady.length,
    bytes,
    browser_cpu_ms: ticksToMs(b0, b1).all,
    browser_cpu_ms_by_process: ticksToMs(b0, b1),
    coordinator_cpu_ms: round(((c1.self - c0.self) / hz) * 1000, 0),
    first_contentful_paint_ms: round(details.paint['first-contentful-paint']),
    dom_content_loaded_ms: round(details.navigation.domContentLoaded),
    sparkline_points: [details.sparkline_points_min, details.sparkline_points_max],
    total_instances_shown: details.total_instances,
    page_errors: errors,
    long_tasks: load.longTasks,
    json_parses: load.parses,
    per_request: perRequest,
  };
  if (mainThread) result.main_thread = mainThread;
  log(`first load ${run}: ${result.ready_ms} ms to ${nGroups} rows and sparklines painted ` +
      `(in the document at ${result.in_document_ms} ms; wall ${result.wall_ms} ms), ` +
      `CPU: Chromium ${JSON.stringify(result.browser_cpu_ms_by_process)} ms, coordinator ${result.coordinator_cpu_ms} ms; ` +
      `${result.requests} requests, ${(bytes / 1024).toFixed(1)} KiB; ` +
      perRequest.filter((r) => r.end_ms !== undefined).map((r) => `${r.path} ${r.start_ms}→${r.end_ms}`).join(', ') +
      `; long tasks ${load.longTasks.map(([at, ms]) => `${ms} ms at ${at}`).join(', ') || 'none'}` +
      `; JSON.parse ${load.parses.map(([at, ms, n]) => `${(n / 1024).toFixed(0)} KiB ${ms} ms at ${at}`).join(', ')}` +
      (mainThread ? `; main thread busy ${mainThread.busy_wall_ms} ms (CPU ${mainThread.busy_cpu_ms} ms), self CPU ` +
        `${Object.entries(mainThread.self_cpu_ms).slice(0, 10).map(([k, v]) => `${k} ${v}`).join(', ')}; tasks ` +
        mainThread.tasks.map((x) => `[${x.at_ms} +${x.wall_ms} (cpu ${x.cpu_ms}): ${x.inner}]`).join(' ') : ''));
  return result;
}

// The cost of a new context and renderer alone: a first load of a small
// text file from the same origin (the console's licences), median of 3.
async function baselineLoad(browser, storageState) {
  const runs = [];
  for (let k = 0; k < 3; k++) {
    const context = await browser.newContext({ storageState });
    const page = await context.newPage();
    const b0 = chromiumTicks(process.pid);
    const t0 = performance.now();
    await page.goto(`${base}/console/licenses.txt`, { waitUntil: 'load', timeout: 30000 });
    const wall = performance.now() - t0;
    const b1 = chromiumTicks(process.pid);
    await context.close();
    runs.push({ wall_ms: round(wall), browser_cpu_ms: ticksToMs(b0, b1).all });
    await sleep(300);
  }
  const result = { wall_ms: median(runs.map((r) => r.wall_ms)), browser_cpu_ms: median(runs.map((r) => r.browser_cpu_ms)), runs };
  log(`baseline (a text file in a new context): ${result.wall_ms} ms, Chromium CPU ${result.browser_cpu_ms} ms`);
  return result;
}

// The API requests of a first load asked again from here, one at a time:
// time to the answer's headers and to its end, and the coordinator's CPU per
// request (ticks over all repetitions).
async function serverTimings(paths, repeat = 10) {
  const out = {};
  for (const path of paths) {
    const headers = [];
    const totals = [];
    let bytes = 0;
    const p0 = processTicks();
    for (let k = 0; k < repeat; k++) {
      const t0 = performance.now();
      const response = await fetch(base + path, { headers: { Authorization: `Bearer ${opt.token}` } });
      headers.push(performance.now() - t0);
      bytes = (await response.arrayBuffer()).byteLength;
      totals.push(performance.now() - t0);
    }
    const p1 = processTicks();
    out[path] = {
      bytes,
      headers_ms: { median: round(median(headers)), max: round(Math.max(...headers)) },
      total_ms: { median: round(median(totals)), max: round(Math.max(...totals)) },
      coordinator_cpu_ms_per_request: round(((p1.self - p0.self) / hz / repeat) * 1000),
    };
    log(`server: ${path}: ${(bytes / 1024).toFixed(1)} KiB, headers after ${out[path].headers_ms.median} ms, ` +
        `end ${out[path].total_ms.median} ms (median of ${repeat}), coordinator CPU ${out[path].coordinator_cpu_ms_per_request} ms a request`);
  }
  return out;
}

// Opens the consoles of phases (c) and (d); each counts its requests.
async function openConsoles(browser, storageState) {
  const consoles = [];
  for (let k = 0; k < nPages; k++) {
    const context = await browser.newContext({ storageState });
    await context.addInitScript(countEvents);
    const page = await context.newPage();
    const entry = { kind: k < nPages - nGroupPages ? 'overview' : 'group', page, context, requests: 0, bytes: 0, paths: {} };
    page.on('request', (request) => {
      entry.requests++;
      const path = new URL(request.url()).pathname;
      entry.paths[path] = (entry.paths[path] || 0) + 1;
    });
    page.on('requestfinished', async (request) => {
      const sizes = await request.sizes().catch(() => null);
      if (sizes) entry.bytes += sizes.responseHeadersSize + sizes.responseBodySize;
    });
    if (entry.kind === 'overview') {
      await page.goto(`${base}/console/`, { waitUntil: 'commit' });
      await page.waitForFunction(overviewReady, nGroups, { polling: 250, timeout: 30000 });
    } else {
      await page.goto(`${base}/console/#/groups/${encodeURIComponent(group)}`, { waitUntil: 'commit' });
      await page.waitForFunction(
        (n) => document.querySelectorAll('[data-testid^="instance-row-"]').length >= n,
        Math.min(perGroup, 100), { polling: 250, timeout: 30000 });
    }
    await page.waitForFunction(() => window.__bench.hello > 0, null, { polling: 250, timeout: 15000 });
    consoles.push(entry);
  }
  return consoles;
}

// One phase: --cpu-seconds of wall time, optionally one change per second.
async function phase(name, { consoles = [], changes = false }) {
  checkTime(name);
  for (const c of consoles) {
    await c.page.evaluate(() => {
      window.__bench.changes = 0;
      window.__bench.items = 0;
    });
    c.requests = 0;
    c.bytes = 0;
    c.paths = {};
  }
  const latencies = [];
  let protect = true;
  const p0 = processTicks();
  const m0 = machineTicks();
  const b0 = chromiumTicks(process.pid).all;
  const t0 = performance.now();
  const end = t0 + cpuSeconds * 1000;
  let next = t0;
  while (performance.now() < end) {
    if (changes) {
      const s = performance.now();
      await api('POST', `/v1/instances/${encodeURIComponent(instance)}/protection`, { protected: protect });
      latencies.push(performance.now() - s);
      protect = !protect;
    }
    next += 1000;
    await sleep(Math.max(0, Math.min(next, end) - performance.now()));
  }
  const wall = (performance.now() - t0) / 1000;
  const p1 = processTicks();
  const m1 = machineTicks();
  const b1 = chromiumTicks(process.pid).all;
  const pages = [];
  for (const c of consoles) {
    const seen = await c.page.evaluate(() => ({ ...window.__bench, hidden: document.hidden }));
    pages.push({ kind: c.kind, change_events: seen.changes, changes_listed: seen.items, hidden: seen.hidden,
                 requests: c.requests, bytes: c.bytes, paths: c.paths });
  }
  const machineBusy = 1 - (m1.idle - m0.idle) / (m1.total - m0.total);
  const result = {
    name,
    seconds: round(wall, 2),
    consoles: consoles.length,
    changes: latencies.length,
    cpu_percent_of_core: round(((p1.self - p0.self) / hz / wall) * 100, 2),
    cpu_ticks: p1.self - p0.self,
    provider_scripts_cpu_percent: round(((p1.children - p0.children) / hz / wall) * 100, 2),
    change_latency_ms: latencies.length ? { median: round(median(latencies)), max: round(Math.max(...latencies)) } : null,
    machine_busy_percent: round(machineBusy * 100, 0),
    chromium_cpu_percent_of_core: round(((b1 - b0) / hz / wall) * 100, 1),
    others_busy_percent: round(((m1.total - m0.total - (m1.idle - m0.idle) - (b1 - b0) - (p1.self - p0.self) - (p1.children - p0.children)) /
      (m1.total - m0.total)) * 100, 0),
    loadavg_end: loadavg(),
    change_events_per_page: pages.length ? { min: Math.min(...pages.map((p) => p.change_events)), max: Math.max(...pages.map((p) => p.change_events)) } : null,
    console_requests: pages.reduce((a, p) => a + p.requests, 0),
    console_bytes: pages.reduce((a, p) => a + p.bytes, 0),
    pages,
  };
  log(`${name}: coordinator ${result.cpu_percent_of_core} % of a core over ${result.seconds} s ` +
      `(${result.cpu_ticks} ticks), ${result.changes} changes, ` +
      (pages.length ? `change events per page ${result.change_events_per_page.min}..${result.change_events_per_page.max}, ` +
        `${result.console_requests} console requests (${(result.console_bytes / 1024).toFixed(0)} KiB), ` : '') +
      `Chromium ${result.chromium_cpu_percent_of_core} % of a core, machine ${result.machine_busy_percent} % busy ` +
      `(${result.others_busy_percent} % by others), load ${result.loadavg_end.join(' ')}`);
  return result;
}

// ---- the run -------------------------------------------------------------------------------

const result = {
  when: new Date().toISOString(),
  setup: {
    groups: nGroups,
    instances: nGroups * perGroup,
    setup_seconds: Number(opt['setup-seconds']),
    history_backfilled: opt.backfill === '1',
    cpu_seconds_per_phase: cpuSeconds,
    consoles: nPages,
    group_pages: nGroupPages,
    change: `POST /v1/instances/${instance}/protection, toggled once a second (group ${group})`,
    loadavg_start: loadavg(),
  },
};

const browser = await chromium.launch({ executablePath: opt.chromium, args: ['--no-sandbox'], headless: true });
try {
  const storageState = await login(browser);
  result.setup.chromium = browser.version();
  const index = await (await fetch(`${base}/console/`)).text();
  result.setup.console_app_js = (index.match(/app\.js\?v=([0-9a-f]+)/) || [])[1] || null;

  // 1. first loads
  checkTime('first loads');
  // The launches of the set-up are over, but the coordinator may still be
  // writing their records: let it settle.
  await sleep(10000);
  const runs = [];
  const m0 = machineTicks();
  const ours0 = chromiumTicks(process.pid).all + processTicks().self;
  for (let k = 1; k <= nLoads; k++) {
    runs.push(await firstLoad(browser, storageState, k));
    await sleep(500);
  }
  const m1 = machineTicks();
  const ours1 = chromiumTicks(process.pid).all + processTicks().self;
  // One more load, traced (not counted: tracing slows it): where the
  // renderer's main thread spends its time.
  const traced = await firstLoad(browser, storageState, 'traced', { trace: true });
  const ready = runs.map((r) => r.ready_ms);
  result.first_load = {
    median_ms: round(median(ready)),
    worst_ms: round(Math.max(...ready)),
    best_ms: round(Math.min(...ready)),
    wall_median_ms: round(median(runs.map((r) => r.wall_ms))),
    browser_cpu_ms_median: median(runs.map((r) => r.browser_cpu_ms)),
    coordinator_cpu_ms_median: median(runs.map((r) => r.coordinator_cpu_ms)),
    requests: median(runs.map((r) => r.requests)),
    bytes: median(runs.map((r) => r.bytes)),
    target_ms: 1000,
    met: Math.max(...ready) <= 1000,
    machine_busy_percent: round((1 - (m1.idle - m0.idle) / (m1.total - m0.total)) * 100, 0),
    // The machine's busy time less Chromium's and the coordinator's: what
    // everything else on the machine took while the loads ran.
    others_busy_percent: round(((m1.total - m0.total - (m1.idle - m0.idle) - (ours1 - ours0)) / (m1.total - m0.total)) * 100, 0),
    runs,
    traced,
  };

  result.first_load.baseline = await baselineLoad(browser, storageState);
  result.first_load.server = await serverTimings(
    runs[0].per_request.map((r) => r.path).filter((path) => path.startsWith('/v1/') && !path.startsWith('/v1/events')));

  // 2. CPU
  if (!opt['skip-cpu']) {
    await sleep(3000);
    const phases = [];
    phases.push(await phase('no console', {}));
    phases.push(await phase('no console, 1 change/s', { changes: true }));
    checkTime('opening the consoles');
    const consoles = await openConsoles(browser, storageState);
    log(`${consoles.length} consoles open (${nGroupPages} on #/groups/${group}); settling 10 s`);
    await sleep(10000);
    phases.push(await phase(`${nPages} consoles, idle`, { consoles }));
    phases.push(await phase(`${nPages} consoles, 1 change/s`, { consoles, changes: true }));
    const loaded = phases[3];
    result.cpu = {
      target_percent_of_core: 5,
      met: loaded.cpu_percent_of_core <= 5,
      consoles_received_changes: loaded.change_events_per_page.min > 0,
      phases,
    };
    for (const c of consoles) await c.context.close();
  }
} finally {
  await browser.close();
}

result.setup.loadavg_end = loadavg();
writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);

const f = result.first_load;
const line = (p) => `  ${p.name.padEnd(28)} ${String(p.cpu_percent_of_core).padStart(6)} % of a core` +
  (p.change_events_per_page ? `   change events/page ${p.change_events_per_page.min}..${p.change_events_per_page.max}, console requests ${(p.console_requests / p.seconds).toFixed(1)}/s` : '') +
  `   (Chromium ${p.chromium_cpu_percent_of_core} % of a core; machine ${p.machine_busy_percent} % busy, ${p.others_busy_percent} % by others)`;
console.log([
  `console bench: ${nGroups} groups, ${nGroups * perGroup} instances, history ${result.setup.history_backfilled ? 'one hour back-filled' : 'fresh'}`,
  `first load (${nLoads} runs, new context each): median ${f.median_ms} ms, worst ${f.worst_ms} ms ` +
    `(target <= 1000 ms: ${f.met ? 'met' : 'MISSED'}); ${f.requests} requests, ${(f.bytes / 1024).toFixed(1)} KiB`,
  `  CPU of a load (median): Chromium, all its processes, ${f.browser_cpu_ms_median} ms; the coordinator ${f.coordinator_cpu_ms_median} ms; ` +
    `a text file in a new context: ${f.baseline.wall_ms} ms, Chromium CPU ${f.baseline.browser_cpu_ms} ms`,
  `  requests of the median run: ${runsText(f.runs)}`,
  `  the same API requests one at a time from node: ` + Object.entries(f.server).map(([path, v]) =>
    `${path} ${v.total_ms.median} ms (coordinator CPU ${v.coordinator_cpu_ms_per_request} ms)`).join('; '),
  `  machine ${f.machine_busy_percent} % busy during the loads (${f.others_busy_percent} % by other processes than Chromium and the coordinator); main thread of a traced load (not counted, ` +
    `${f.traced.ready_ms} ms): ${f.traced.main_thread ? `busy ${f.traced.main_thread.busy_wall_ms} ms, ` +
    `of it CPU ${f.traced.main_thread.busy_cpu_ms} ms; self CPU ` +
    Object.entries(f.traced.main_thread.self_cpu_ms).slice(0, 8).map(([k, v]) => `${k} ${v} ms`).join(', ') : 'no trace'}`,
  ...(result.cpu ? [
    `coordinator CPU over ${cpuSeconds} s per phase:`,
    ...result.cpu.phases.map(line),
    `  target <= 5 % with ${nPages} consoles at 1 change/s: ${result.cpu.met ? 'met' : 'MISSED'}; ` +
      `consoles received the changes: ${result.cpu.consoles_received_changes ? 'yes' : 'NO'}`] : ['CPU: skipped']),
  `load average ${result.setup.loadavg_start.join(' ')} at start, ${result.setup.loadavg_end.join(' ')} at end`,
  `figures: ${opt.out}`,
].join('\n'));

function runsText(runs) {
  const sorted = [...runs].sort((a, b) => a.ready_ms - b.ready_ms);
  const mid = sorted[Math.floor(sorted.length / 2)];
  return mid.per_request.map((r) => (r.bytes === null ? `${r.path} (stream)` : `${r.path} ${(r.bytes / 1024).toFixed(1)} KiB ${r.start_ms}→${r.end_ms} ms`)).join('; ');
}
