// riptide-performance dashboard: polls the library's JSON endpoints and draws them with Chart.js.
// With window.RIPTIDE_STATIC_DATA (a report rendered to a file) it draws that data once instead.
// Field names are the endpoints' (docs/http-endpoints.md); where an endpoint's shape is richer, several names are tried
// so the page keeps working as the library adds fields.
(function () {
  'use strict';

  const FAST_MS = 2000;   // snapshot, trend, health, performance: cheap reads of published results
  const SLOW_MS = 10000;  // leaks, allocations, heap profile: each asks for a fresh heap observation
  const MAX_POINTS = 900; // client-side history kept per series (30 min at 2 s)
  const MIB = 1024 * 1024;
  const STATIC = window.RIPTIDE_STATIC_DATA || null;

  const COLORS = {
    rss: '#2563eb', heap: '#dc2626', resident: '#16a34a', allocRate: '#9333ea',
    p50: '#0891b2', p95: '#ea580c', pps: '#0d9488',
  };

  // ---------------------------------------------------------------------------------------------------
  // Small helpers

  const $ = (id) => document.getElementById(id);

  function num(value) {
    return typeof value === 'number' && isFinite(value) ? value : undefined;
  }

  // First numeric value among dotted paths of `obj` ("latency.p50_ms").
  function pick(obj, ...paths) {
    for (const path of paths) {
      let v = obj;
      for (const key of path.split('.')) {
        if (v === null || v === undefined) break;
        v = v[key];
      }
      if (num(v) !== undefined) return v;
    }
    return undefined;
  }

  function pickObject(obj, ...paths) {
    for (const path of paths) {
      let v = obj;
      for (const key of path.split('.')) {
        if (v === null || v === undefined) break;
        v = v[key];
      }
      if (v !== null && v !== undefined && typeof v === 'object') return v;
    }
    return undefined;
  }

  function fmtBytes(bytes) {
    if (num(bytes) === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Math.abs(bytes), i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; ++i; }
    return (bytes < 0 ? '-' : '') + (v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
  }

  function fmtNumber(n, digits) {
    if (num(n) === undefined) return '–';
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return n.toFixed(digits === undefined ? (Number.isInteger(n) ? 0 : 1) : digits);
  }

  function fmtSeconds(s) {
    if (num(s) === undefined) return '–';
    if (s < 60) return s.toFixed(0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
    return (s / 3600).toFixed(1) + ' h';
  }

  function fmtPercent(ratio) {
    return num(ratio) === undefined ? '–' : (ratio * 100).toFixed(1) + ' %';
  }

  function fmtClock(ms) {
    const d = new Date(ms);
    return d.toTimeString().slice(0, 8);
  }

  function text(id, value) {
    const el = $(id);
    if (el) el.textContent = value;
  }

  function cell(tr, value, cls, title) {
    const td = document.createElement('td');
    td.textContent = value;
    if (cls) td.className = cls;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  // What hovering a site shows: its full name and the stack behind it (the row shows the readable name).
  function siteTitle(site) {
    const lines = [];
    if (site.function_full) lines.push(String(site.function_full));
    if (Array.isArray(site.stack)) lines.push(...site.stack.slice(0, 12).map((frame) => '  ' + String(frame)));
    return lines.join('\n');
  }

  // An estimate with its one-sigma sampling error, when the report has one.
  function fmtEstimate(bytes, errorBytes) {
    const error = num(errorBytes);
    return error !== undefined && error > 0 ? fmtBytes(bytes) + ' ± ' + fmtBytes(error) : fmtBytes(bytes);
  }

  // Replaces a table's body with `rows` (arrays of [text, class, title]); keeps the placeholder when empty.
  function fillTable(id, rows, emptyText) {
    const table = $(id);
    if (!table) return;
    const tbody = table.tBodies[0];
    tbody.textContent = '';
    for (const row of rows) {
      const tr = document.createElement('tr');
      for (const [value, cls, title] of row) cell(tr, value, cls, title);
      tbody.appendChild(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = cell(tr, emptyText);
      td.colSpan = table.tHead.rows[0].cells.length;
      tbody.appendChild(tr);
    }
    table.dataset.rows = String(rows.length);
  }

  // Breakers, caches and targets come as arrays of objects or as maps name -> object.
  function entries(collection, nameKeys) {
    if (!collection) return [];
    if (Array.isArray(collection)) {
      return collection.map((item) => {
        let name = '';
        for (const k of nameKeys) if (item && typeof item[k] === 'string') { name = item[k]; break; }
        return [name, item];
      });
    }
    if (typeof collection === 'object') return Object.entries(collection);
    return [];
  }

  // ---------------------------------------------------------------------------------------------------
  // Charts

  const charts = {};

  function makeChart(id, series, yFormat) {
    const canvas = $(id);
    if (!canvas || typeof Chart === 'undefined') return null;
    const chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: series.map((s) => ({
          label: s.label, data: [], borderColor: s.color, backgroundColor: s.color,
          borderWidth: 2, pointRadius: 0, pointHitRadius: 6, tension: 0.2, spanGaps: true,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        // The captions name each colour, so the legend box would only repeat them.
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            title: (items) => items.length ? fmtClock(items[0].parsed.x) : '',
            label: (item) => item.dataset.label + ': ' + yFormat(item.parsed.y),
          } },
        },
        scales: {
          x: { type: 'linear', ticks: { maxTicksLimit: 6, callback: (v) => fmtClock(v) } },
          y: { beginAtZero: true, ticks: { callback: (v) => yFormat(v) } },
        },
      },
    });
    charts[id] = chart;
    return chart;
  }

  // The time axis runs from the first point to the last one of the chart's series, not past them.
  function setSeries(id, pointsId, seriesData) {
    const chart = charts[id];
    let total = 0;
    let first = Infinity, last = -Infinity;
    seriesData.forEach((data, i) => {
      for (const point of data) {
        if (point.y === null) continue;
        total += 1;
        first = Math.min(first, point.x);
        last = Math.max(last, point.x);
      }
      if (chart) chart.data.datasets[i].data = data;
    });
    const bounded = total > 0 && last > first;
    if (chart) {
      chart.options.scales.x.min = bounded ? first : undefined;
      chart.options.scales.x.max = bounded ? last : undefined;
      chart.update('none');
    }
    const canvas = $(id);
    if (canvas) {
      canvas.dataset.points = String(total);
      canvas.dataset.xMin = bounded ? String(first) : '';
      canvas.dataset.xMax = bounded ? String(last) : '';
      // Per series: "first-last/count" of its x values, for checks that the series share one axis.
      canvas.dataset.series = seriesData.map((data) =>
        data.length ? data[0].x + '-' + data[data.length - 1].x + '/' + data.length : 'empty').join(' ');
    }
    text(pointsId, total ? total + ' points' : 'waiting for data');
  }

  // Series the page accumulates itself from polled figures (latency, throughput, allocation rate).
  const history = { allocRate: [], p50: [], p95: [], pps: [] };

  function pushPoint(name, x, y) {
    if (num(y) === undefined) return;
    const series = history[name];
    if (series.length && series[series.length - 1].x >= x) return;
    series.push({ x, y });
    if (series.length > MAX_POINTS) series.splice(0, series.length - MAX_POINTS);
  }

  function toPoints(list, xKey, yFn) {
    const out = [];
    for (const p of list || []) {
      const x = Date.parse(p[xKey]);
      const y = yFn(p);
      if (!isNaN(x) && num(y) !== undefined) out.push({ x, y });
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Panels

  const state = { leakLocations: [], flameRoot: null, flameZoom: null, heap: null, mark: null };

  // Every series of one chart over the same points: a figure a point lacks is a gap (null), not a shorter
  // series, so the lines cover one time range.
  function sharedSeries(points, valueFns) {
    const series = valueFns.map(() => []);
    for (const p of points) {
      const x = Date.parse(p.timestamp);
      if (isNaN(x)) continue;
      valueFns.forEach((fn, i) => {
        const y = fn(p);
        series[i].push({ x, y: num(y) === undefined ? null : y });
      });
    }
    return series;
  }

  function renderTrend(trend) {
    const points = trend && Array.isArray(trend.data_points) ? trend.data_points : [];
    const mib = (v) => (num(v) === undefined ? undefined : v / MIB);
    const [rss, heap, resident] = sharedSeries(points, [
      (p) => mib(p.rss_bytes), (p) => mib(pick(p, 'heap_allocated_bytes', 'memory_usage', 'heap_bytes')),
      (p) => mib(p.resident_bytes)]);
    // Allocation rate from the cumulative counts of consecutive points.
    const rate = [];
    for (let i = 1; i < points.length; ++i) {
      const a = points[i - 1], b = points[i];
      const dt = (Date.parse(b.timestamp) - Date.parse(a.timestamp)) / 1000;
      if (dt > 0 && num(a.allocation_count) !== undefined && num(b.allocation_count) !== undefined &&
          b.allocation_count >= a.allocation_count) {
        rate.push({ x: Date.parse(b.timestamp), y: (b.allocation_count - a.allocation_count) / dt });
      }
    }
    setSeries('chart-memory', 'points-memory', [rss, heap, resident]);
    setSeries('chart-allocation-rate', 'points-allocation-rate', [rate.length ? rate : history.allocRate]);
    const lastHeap = heap.filter((p) => p.y !== null).pop();
    if (lastHeap && $('tile-heap').textContent === '–') text('tile-heap', fmtBytes(lastHeap.y * MIB));
  }

  function renderSnapshot(snapshot, now) {
    if (!snapshot) return;
    if (snapshot.session_id) text('session', snapshot.session_id);
    const rss = pick(snapshot, 'rss_bytes', 'process.rss_bytes', 'memory.rss_bytes');
    const heap = pick(snapshot, 'heap_bytes', 'jemalloc.allocated', 'current_usage');
    text('tile-rss', fmtBytes(rss));
    text('tile-heap', fmtBytes(heap));
  }

  function renderPerformance(perf, now) {
    if (!perf) return;
    const p50 = pick(perf, 'latency.p50_ms', 'metrics.p50_latency_ms', 'p50_latency_ms', 'latency_ms.p50');
    const p95 = pick(perf, 'latency.p95_ms', 'metrics.p95_latency_ms', 'p95_latency_ms', 'latency_ms.p95');
    const pps = pick(perf, 'throughput.pages_per_second', 'metrics.throughput_pps', 'throughput_pps',
                     'throughput.pps');
    pushPoint('p50', now, p50);
    pushPoint('p95', now, p95);
    pushPoint('pps', now, pps);
    text('tile-pps', fmtNumber(pps, 1));
    text('tile-latency', (num(p50) !== undefined ? fmtNumber(p50, 0) : '–') + ' / ' +
                         (num(p95) !== undefined ? fmtNumber(p95, 0) : '–') + ' ms');
    // Histories the library keeps itself take precedence over what this page saw since it loaded.
    const seriesFrom = (list, key) => toPoints(list, 'timestamp', (p) => pick(p, ...key));
    const hist = pickObject(perf, 'history', 'timeline');
    const p50s = hist ? seriesFrom(hist.points || hist, ['p50_ms', 'p50_latency_ms']) : [];
    const p95s = hist ? seriesFrom(hist.points || hist, ['p95_ms', 'p95_latency_ms']) : [];
    const ppss = hist ? seriesFrom(hist.points || hist, ['pages_per_second', 'throughput_pps']) : [];
    // A report has no "now": its tiles show the last point of its history.
    const last = (list) => (list.length ? list[list.length - 1].y : undefined);
    if (p50 === undefined && p50s.length) {
      text('tile-latency', fmtNumber(last(p50s), 0) + ' / ' + fmtNumber(last(p95s), 0) + ' ms');
    }
    if (pps === undefined && ppss.length) text('tile-pps', fmtNumber(last(ppss), 1));
    setSeries('chart-latency', 'points-latency',
              [p50s.length ? p50s : history.p50, p95s.length ? p95s : history.p95]);
    setSeries('chart-throughput', 'points-throughput', [ppss.length ? ppss : history.pps]);

    renderTargets(perf);
    renderBreakers(pickObject(perf, 'breakers', 'circuit_breakers', 'resources.circuit_breakers', 'limits.breakers'));
    renderCache(pickObject(perf, 'cache', 'metrics.cache'));
  }

  function renderTargets(perf) {
    const rows = [];
    const targets = pickObject(perf, 'targets.targets', 'targets', 'target_status');
    const status = pickObject(perf, 'target_status', 'status', 'targets') || {};
    const checks = pickObject(status, 'checks', 'results');
    if (checks) {
      for (const [name, c] of entries(checks, ['target', 'name'])) {
        let st = typeof c.state === 'string' ? c.state : c.met === true ? 'met' : c.met === false ? 'violated' : '–';
        const cls = st === 'violated' ? 'bad' : st === 'warning' ? 'warn' : st === 'met' ? 'ok' : '';
        rows.push([[name, 'loc'], [fmtNumber(pick(c, 'measured', 'value', 'actual')), 'num'],
                   [fmtNumber(pick(c, 'limit', 'threshold')), 'num'], [st.replace('_', ' '), cls]]);
      }
    } else if (targets) {
      const m = pickObject(perf, 'metrics') || perf;
      const line = (label, now, limit, lowerIsBetter) => {
        if (num(limit) === undefined) return;
        const ok = num(now) === undefined ? undefined : lowerIsBetter ? now <= limit : now >= limit;
        rows.push([[label, 'loc'], [fmtNumber(now), 'num'], [fmtNumber(limit), 'num'],
                   [ok === undefined ? '–' : ok ? 'met' : 'violated', ok === false ? 'bad' : 'ok']]);
      };
      line('p50 latency, ms', pick(m, 'p50_latency_ms', 'latency.p50_ms'), targets.p50_latency_ms, true);
      line('p95 latency, ms', pick(m, 'p95_latency_ms', 'latency.p95_ms'), targets.p95_latency_ms, true);
      line('memory, MiB', pick(m, 'memory_rss_mb', 'resources.memory_rss_mb'), targets.max_memory_mb, true);
      line('throughput, pages/s', pick(m, 'throughput_pps', 'throughput.pages_per_second'),
           targets.min_throughput_pps, false);
      line('ai share, %', pick(m, 'ai_overhead_percent', 'ai_processing_percent'), targets.max_ai_overhead_percent,
           true);
    }
    fillTable('targets-table', rows, 'no targets reported');
    const list = $('target-messages');
    if (list) {
      list.textContent = '';
      const violations = status.violations || perf.violations || [];
      const warnings = status.warnings || perf.warnings || [];
      for (const v of violations) { const li = document.createElement('li'); li.className = 'bad'; li.textContent = v; list.appendChild(li); }
      for (const w of warnings) { const li = document.createElement('li'); li.className = 'warn'; li.textContent = w; list.appendChild(li); }
    }
  }

  function renderBreakers(breakers) {
    const rows = [];
    let open = 0;
    for (const [name, b] of entries(breakers, ['name', 'key'])) {
      const st = String((b && (b.state || b.status)) || '–').toLowerCase();
      if (st === 'open') ++open;
      rows.push([[name, 'loc'], [st, 'state-' + st],
                 [fmtPercent(pick(b, 'failure_rate', 'failure_ratio')), 'num'],
                 [fmtNumber(pick(b, 'calls', 'buffered_calls', 'total_calls', 'window_calls', 'recorded_calls')), 'num']]);
    }
    fillTable('breakers-table', rows, 'no breakers yet');
    text('tile-breakers', rows.length ? open + ' of ' + rows.length : '–');
  }

  function renderCache(cache) {
    const rows = [];
    if (cache) {
      const layers = pickObject(cache, 'layers') ? entries(cache.layers, ['name', 'layer'])
        : Object.entries(cache).filter(([, v]) => v && typeof v === 'object' && !Array.isArray(v));
      const row = (name, c) => {
        const hits = pick(c, 'hits', 'hit_count'), misses = pick(c, 'misses', 'miss_count');
        let ratio = pick(c, 'hit_ratio', 'hit_rate');
        if (ratio === undefined && hits !== undefined && misses !== undefined && hits + misses > 0) {
          ratio = hits / (hits + misses);
        }
        if (hits === undefined && misses === undefined && ratio === undefined) return;
        rows.push([[name, 'loc'], [fmtNumber(hits), 'num'], [fmtNumber(misses), 'num'], [fmtPercent(ratio), 'num']]);
      };
      for (const [name, c] of layers) row(name, c);
      row('overall', cache);
      const overall = rows.length ? rows[rows.length - 1][3][0] : '–';
      text('tile-cache', overall);
    }
    fillTable('cache-table', rows, 'no cache figures');
  }

  function renderHealth(health) {
    if (!health) return;
    const badge = $('status');
    const status = String(health.status || 'unknown');
    badge.textContent = status;
    badge.className = 'badge ' + status.toLowerCase();
    if (health.session_id) text('session', health.session_id);
    const details = health.details || {};
    const tips = [].concat(details.warnings || [], details.recommendations || []);
    badge.title = tips.length ? tips.join('\n') : 'no warnings';
  }

  function renderLeaks(report) {
    if (!report) return;
    const leaks = Array.isArray(report.leaks) ? report.leaks.slice() : [];
    leaks.sort((a, b) => (b.size || 0) - (a.size || 0));
    state.leakLocations = leaks.map((l) => String(l.location || ''));
    const rows = leaks.map((l) => [[String(l.location || '?'), 'loc', siteTitle(l)],
                                   [fmtEstimate(l.size, l.size_error_bytes), 'num'],
                                   [fmtSeconds(pick(l, 'age_seconds')), 'num'], [String(l.allocation_time || '–'), '']]);
    fillTable('leaks-table', rows, report.available === false
      ? 'leak detection unavailable: ' + (report.reason || 'no reason given') : 'no leak suspects');
    text('tile-leaks', num(report.leak_count) !== undefined ? String(report.leak_count) : String(leaks.length));
    markLeakFrames();
  }

  function renderAllocations(stats) {
    if (!stats) return;
    const rows = (stats.top_allocators || []).slice(0, 15).map((a) => [
      [String(a.location || '?'), 'loc', siteTitle(a)], [fmtNumber(pick(a, 'allocation_count', 'count')), 'num'],
      [fmtEstimate(a.total_bytes, a.size_error_bytes), 'num'], [fmtBytes(a.average_size), 'num'],
      [num(a.percentage_of_total) !== undefined ? a.percentage_of_total.toFixed(1) + ' %' : '–', 'num'],
      [num(a.temporary_share) !== undefined ? (a.temporary_share * 100).toFixed(0) + ' %' : '–', 'num']]);
    fillTable('allocations-table', rows, stats.available === false
      ? 'allocation tracking unavailable: ' + (stats.reason || 'no reason given') : 'no allocation sites yet');
    const now = Date.parse(stats.timestamp) || Date.now();
    pushPoint('allocRate', now, pick(stats, 'allocation_rate_per_second'));
  }

  function fmtLifetime(ms) {
    if (num(ms) === undefined) return '–';
    if (ms < 1000) return fmtNumber(ms, 0) + ' ms';
    if (ms < 120000) return fmtNumber(ms / 1000, 1) + ' s';
    return fmtNumber(ms / 60000, 1) + ' min';
  }

  // How long each site's allocations live (GET /metrics/memory/lifetimes).
  function renderLifetimes(view) {
    if (!view) return;
    if (view.available === false || view.error) {
      fillTable('lifetimes-table', [], 'lifetimes unavailable: ' + (view.reason || (view.error || {}).message || 'no reason given'));
      return;
    }
    text('lifetimes-threshold', fmtLifetime(view.temporary_threshold_ms));
    const rows = (view.sites || []).slice(0, 15).map((s) => [
      [String(s.location || '?'), 'loc', s.function || ''], [fmtNumber(s.sampled), 'num'],
      [num(s.temporary_share) !== undefined
        ? (s.temporary_share * 100).toFixed(0) + ' % ± ' + (s.temporary_share_error * 100).toFixed(0) : '–', 'num'],
      [fmtLifetime(s.lifetime_p50_ms), 'num'], [fmtLifetime(s.lifetime_p99_ms), 'num'], [fmtNumber(s.alive), 'num']]);
    fillTable('lifetimes-table', rows, 'no sampled allocations recorded yet');
  }

  // Where RSS goes, from the program's bytes up (GET /metrics/memory/fragmentation).
  function renderFragmentation(report) {
    if (!report) return;
    if (report.available === false) {
      fillTable('fragmentation-table', [], 'fragmentation view unavailable: ' + (report.reason || 'no reason given'));
      fillTable('size-classes-table', [], 'no size classes');
      return;
    }
    const r = report.reconciliation || {};
    const steps = [
      ['allocated', r.allocated_bytes, 'objects the program holds'],
      ['+ free space in pages', r.page_free_bytes, 'partly used slabs, large allocations rounded up'],
      ['+ dirty pages', r.dirty_bytes, 'freed pages kept for reuse until they decay or a purge'],
      ['+ metadata', r.metadata_bytes, "jemalloc's own bookkeeping"],
      ['= jemalloc resident', r.resident_bytes, ''],
      ['+ outside jemalloc', r.outside_allocator_bytes, 'code, stacks, other libraries'],
      ['= RSS', report.rss_bytes, 'what the OS charges'],
    ].map(([step, bytes, what]) => [[step, ''], [fmtBytes(bytes), 'num'], [what, '']]);
    fillTable('fragmentation-table', steps, 'no figures yet');
    text('fragmentation-ratio', num(report.fragmentation_ratio) !== undefined
      ? (report.fragmentation_ratio * 100).toFixed(1) + ' % of resident holds no object' : '–');
    const classes = (report.worst_size_classes || []).map((c) => [
      [fmtBytes(c.size), 'num'], [fmtNumber(c.slabs), 'num'],
      [num(c.utilization) !== undefined ? (c.utilization * 100).toFixed(1) + ' %' : '–', 'num'],
      [fmtBytes(c.wasted_bytes), 'num']]);
    fillTable('size-classes-table', classes, 'no small size class in use');
    const list = $('fragmentation-advice');
    if (list) {
      list.replaceChildren(...(report.recommendations || []).map((a) => {
        const item = document.createElement('li');
        item.textContent = a.setting + ' (up to ' + fmtBytes(a.up_to_bytes) + '): ' + a.reason;
        return item;
      }));
      list.dataset.items = String((report.recommendations || []).length);
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Flame graph (icicle: callers on top, callees below, width = in-use bytes)

  function parseFolded(textBody) {
    const root = { name: 'all', value: 0, children: new Map() };
    for (const line of textBody.split('\n')) {
      const at = line.lastIndexOf(' ');
      if (at <= 0) continue;
      const value = Number(line.slice(at + 1));
      if (!(value > 0)) continue;
      root.value += value;
      let node = root;
      for (const frame of line.slice(0, at).split(';')) {
        let child = node.children.get(frame);
        if (!child) { child = { name: frame, value: 0, children: new Map() }; node.children.set(frame, child); }
        child.value += value;
        node = child;
      }
    }
    return root;
  }

  // Minimal protobuf reader for pprof's profile.proto (only the fields the views need): the sample types'
  // names and every sample as its function names (leaf first) and its values, signed (delta profiles
  // have negative in-use values).
  function decodePprof(bytes) {
    let pos = 0;
    const varint = (buf, p) => {
      let result = 0, shift = 0, b;
      do { b = buf[p.i++]; result += (b & 0x7f) * Math.pow(2, shift); shift += 7; } while (b & 0x80);
      return result;
    };
    const fields = (buf, start, end, visit) => {
      const p = { i: start };
      while (p.i < end) {
        const key = varint(buf, p);
        const field = Math.floor(key / 8), wire = key & 7;
        if (wire === 0) visit(field, wire, varint(buf, p));
        else if (wire === 2) { const len = varint(buf, p); visit(field, wire, [p.i, p.i + len]); p.i += len; }
        else if (wire === 1) p.i += 8;
        else if (wire === 5) p.i += 4;
        else throw new Error('bad wire type');
      }
    };
    const packed = (buf, v, wire) => {
      if (wire === 0) return [v];
      const out = [], p = { i: v[0] };
      while (p.i < v[1]) out.push(varint(buf, p));
      return out;
    };
    const strings = [], sampleTypes = [], samples = [], locations = new Map(), functions = new Map();
    const dec = new TextDecoder();
    fields(bytes, pos, bytes.length, (f, w, v) => {
      if (f === 6) strings.push(dec.decode(bytes.subarray(v[0], v[1])));
      else if (f === 1) { const t = {}; fields(bytes, v[0], v[1], (g, _w, x) => { if (g === 1) t.type = x; }); sampleTypes.push(t); }
      else if (f === 2) {
        const s = { locs: [], values: [] };
        fields(bytes, v[0], v[1], (g, gw, x) => {
          if (g === 1) s.locs.push(...packed(bytes, x, gw));
          else if (g === 2) s.values.push(...packed(bytes, x, gw));
        });
        samples.push(s);
      } else if (f === 4) {
        const l = { id: 0, fns: [] };
        fields(bytes, v[0], v[1], (g, _w, x) => {
          if (g === 1) l.id = x;
          else if (g === 4) fields(bytes, x[0], x[1], (h, _hw, y) => { if (h === 1) l.fns.push(y); });
        });
        locations.set(l.id, l);
      } else if (f === 5) {
        const fn = { id: 0, name: 0 };
        fields(bytes, v[0], v[1], (g, _w, x) => { if (g === 1) fn.id = x; else if (g === 2) fn.name = x; });
        functions.set(fn.id, fn);
      }
    });
    // Values are varints: two's complement of a negative int64 reads as a number near 2^64.
    const signed = (v) => (v >= 9223372036854775808 ? v - 18446744073709551616 : v);
    const decoded = { types: sampleTypes.map((t) => strings[t.type]), samples: [] };
    for (const s of samples) {
      const names = [];
      for (const id of s.locs) {
        const loc = locations.get(id);
        // Inlined functions come innermost first within one location.
        const fns = loc ? loc.fns : [];
        if (!fns.length) names.push('0x?');
        for (const fid of fns) names.push(strings[(functions.get(fid) || {}).name] || '?');
      }
      decoded.samples.push({ names, values: s.values.map(signed) });
    }
    return decoded;
  }

  function valueIndex(decoded, type) {
    const index = decoded.types.indexOf(type);
    return index >= 0 ? index : decoded.types.length - 1;
  }

  function parsePprof(decoded) {
    const index = valueIndex(decoded, 'inuse_space');
    const lines = [];
    for (const s of decoded.samples) {
      const value = s.values[index];
      if (!(value > 0)) continue;
      lines.push(s.names.slice().reverse().join(';') + ' ' + value);  // leaf first in pprof; root first folded
    }
    return parseFolded(lines.join('\n'));
  }

  // ---------------------------------------------------------------------------------------------------
  // Per-site views (peak, diff, delta): a stack is charged to its first frame, from the leaf, that is not
  // runtime code, as the library's own reports do (docs/profiling.md, "Attribution").

  const RUNTIME_PREFIXES = ['std::', '__gnu_cxx::', '__cxxabiv1::', '__cxa_', 'operator new', 'operator delete',
                            'je_', '__libc_', 'riptide::performance::'];
  const C_ALLOCATORS = new Set(['malloc', 'calloc', 'realloc', 'free', 'posix_memalign', 'aligned_alloc',
                                'memalign', 'valloc', 'pvalloc', 'strdup', 'strndup', 'reallocarray', 'mallocx',
                                'rallocx', 'xallocx', 'sdallocx', 'dallocx']);

  // "void std::vector<int>::push_back(int const&)" -> "std::vector<int>::push_back": no return type, no
  // parameters (the first '(' outside template brackets ends the name).
  function bareName(name) {
    let depth = 0, end = name.length, start = 0;
    for (let i = 0; i < name.length; ++i) {
      const c = name[i];
      if (c === '<') ++depth; else if (c === '>') --depth;
      else if (c === ' ' && depth === 0 && name.slice(0, i).indexOf('(') < 0 && !name.startsWith('operator')) start = i + 1;
      else if (c === '(' && depth === 0 && i > start) { end = i; break; }
    }
    return name.slice(start, end);
  }

  function isRuntime(name) {
    const bare = bareName(name);
    return C_ALLOCATORS.has(bare) || RUNTIME_PREFIXES.some((p) => bare.startsWith(p));
  }

  function siteOf(leafFirst) {
    for (const name of leafFirst) if (!isRuntime(name)) return bareName(name);
    return leafFirst.length ? bareName(leafFirst[leafFirst.length - 1]) : '?';
  }

  // Map site -> summed value of `type` over the samples of a decoded profile.
  function sitesOf(decoded, type) {
    const index = decoded.types.indexOf(type);
    const sites = new Map();
    if (index < 0) return sites;  // a report's folded stacks carry one type
    for (const s of decoded.samples) {
      const site = siteOf(s.names);
      sites.set(site, (sites.get(site) || 0) + (s.values[index] || 0));
    }
    return sites;
  }

  // Folded stacks ("root;...;leaf value", signed) as a decoded profile with one sample type.
  function decodeFolded(textBody, type) {
    const decoded = { types: [type], samples: [] };
    for (const line of String(textBody || '').split('\n')) {
      const at = line.lastIndexOf(' ');
      const value = Number(line.slice(at + 1));
      if (at <= 0 || !isFinite(value)) continue;
      decoded.samples.push({ names: line.slice(0, at).split(';').reverse(), values: [value] });
    }
    return decoded;
  }

  function changeCell(bytes) {
    return [(bytes > 0 ? '+' : '') + fmtBytes(bytes), 'num ' + (bytes > 0 ? 'grew' : bytes < 0 ? 'shrank' : '')];
  }

  function renderPeak(body) {
    if (!body) return;
    const peak = body.peak;
    if (!peak) {
      text('peak-summary', body.reason || 'no peak profile yet');
      fillTable('peak-table', [], 'no peak profile yet');
      return;
    }
    const rss = num(peak.rss_bytes) !== undefined ? ', RSS ' + fmtBytes(peak.rss_bytes) : '';
    text('peak-summary', 'Peak at ' + String(peak.observed_at || '?') + ': heap ' + fmtBytes(peak.heap_bytes) + rss +
         ' (capture ' + fmtNumber(peak.capture_number) + '; the next above ' +
         fmtBytes(pick(body, 'recorder.next_capture_above_bytes')) + ').');
    const rows = (peak.top_sites || []).slice(0, 15).map((site) => [
      [String(site.location || '?'), 'loc', siteTitle(site)], [fmtEstimate(site.inuse_bytes, site.size_error_bytes), 'num'],
      [num(site.share_percent) !== undefined ? site.share_percent.toFixed(1) + ' %' : '–', 'num']]);
    fillTable('peak-table', rows, 'no sites in the peak profile');
  }

  function renderDiff(base, current, baseName) {
    if (!base || !current) return;
    const before = sitesOf(base, 'inuse_space'), after = sitesOf(current, 'inuse_space');
    const names = new Set([...before.keys(), ...after.keys()]);
    const rows = [];
    for (const name of names) {
      const b = before.get(name) || 0, a = after.get(name) || 0;
      if (Math.round(a - b) !== 0) rows.push({ name, b, a, change: a - b });
    }
    rows.sort((x, y) => Math.abs(y.change) - Math.abs(x.change));
    fillTable('diff-table', rows.slice(0, 20).map((r) => [[r.name, 'loc'], [fmtBytes(r.b), 'num'], [fmtBytes(r.a), 'num'],
                                                          changeCell(r.change)]), 'no difference');
    text('diff-note', 'Base: ' + baseName + '. ' + rows.length + ' functions changed.');
  }

  function renderDelta(decoded, seconds) {
    if (!decoded) return;
    const inUse = sitesOf(decoded, 'inuse_space'), allocated = sitesOf(decoded, 'alloc_space');
    const rows = Array.from(inUse.entries()).map(([name, change]) => ({ name, change, allocated: allocated.get(name) || 0 }));
    rows.sort((x, y) => Math.abs(y.change) - Math.abs(x.change) || y.allocated - x.allocated);
    fillTable('delta-table', rows.slice(0, 20).map((r) => [[r.name, 'loc'], changeCell(r.change),
                                                           [fmtBytes(r.allocated), 'num']]), 'nothing changed');
    let total = 0;
    for (const r of rows) total += r.change;
    text('delta-note', 'Over ' + seconds + ' s the heap profile changed by ' + (total > 0 ? '+' : '') + fmtBytes(total) +
         ' (sampled estimate; negative: freed).');
  }

  function frameColor(name) {
    let h = 0;
    for (let i = 0; i < name.length; ++i) h = (h * 31 + name.charCodeAt(i)) | 0;
    const hue = 10 + Math.abs(h) % 45;  // warm hues, like the classic flame graph
    return 'hsl(' + hue + ', 85%, ' + (58 + Math.abs(h >> 8) % 14) + '%)';
  }

  function drawFlame() {
    const box = $('flamegraph');
    const root = state.flameZoom || state.flameRoot;
    box.textContent = '';
    if (!root || !(root.value > 0)) { box.dataset.frames = '0'; return; }
    const total = root.value;
    let frames = 0, maxDepth = 0;
    const add = (node, depth, left) => {
      const width = node.value / total * 100;
      if (width < 0.15) return;
      const div = document.createElement('div');
      div.className = 'frame';
      div.style.left = left + '%';
      div.style.width = width + '%';
      div.style.top = (depth * 18) + 'px';
      div.style.background = frameColor(node.name);
      div.textContent = node.name;
      div.title = node.name + '\n' + fmtBytes(node.value) + ' (' + (node.value / total * 100).toFixed(1) + ' %)';
      div.dataset.name = node.name;
      div.addEventListener('click', () => { state.flameZoom = depth === 0 ? null : node; drawFlame(); });
      box.appendChild(div);
      ++frames;
      maxDepth = Math.max(maxDepth, depth);
      let x = left;
      const children = Array.from(node.children.values()).sort((a, b) => b.value - a.value);
      for (const child of children) {
        add(child, depth + 1, x);
        x += child.value / total * 100;
      }
    };
    add(root, 0, 0);
    box.style.height = ((maxDepth + 1) * 18 + 2) + 'px';
    box.dataset.frames = String(frames);
    markLeakFrames();
  }

  // Frames that are leak suspects get a red outline, so the leak is visible in the flame graph too.
  function markLeakFrames() {
    const names = state.leakLocations.map((l) => l.split(' ')[0].split('(')[0]).filter((n) => n.length > 2);
    for (const div of document.querySelectorAll('#flamegraph .frame')) {
      const name = div.dataset.name || '';
      div.classList.toggle('leak', names.some((n) => name.indexOf(n) >= 0 || n.indexOf(name.split('(')[0]) >= 0 && name.length > 2));
    }
  }

  function renderFlame(root, source) {
    state.flameRoot = root;
    state.flameZoom = null;
    drawFlame();
    text('flame-note', root && root.value > 0
      ? 'Source: ' + source + '. Total ' + fmtBytes(root.value) + ' in use (unbiased estimate from sampled allocations).'
      : 'No sampled allocations in the heap profile yet (' + source + ').');
  }

  // ---------------------------------------------------------------------------------------------------
  // Polling

  async function getJson(path) {
    const response = await fetch(path, { cache: 'no-store' });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : response.status + ' ' + response.statusText;
      throw new Error(path + ': ' + message);
    }
    return body;
  }

  async function fetchPprof(path) {
    const response = await fetch(path, { cache: 'no-store' });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : String(response.status));
    }
    let bytes = new Uint8Array(await response.arrayBuffer());
    // pprof profiles are gzipped protobuf; the browser's own gunzip unpacks them.
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      const unzipped = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
      bytes = new Uint8Array(await new Response(unzipped).arrayBuffer());
    }
    return decodePprof(bytes);
  }

  async function loadDiff() {
    const useMark = $('diff-base').value === 'mark';
    if (useMark && !state.mark) { text('diff-note', 'No marked heap profile yet: mark the current heap first.'); return; }
    try {
      const base = useMark ? state.mark.profile : await fetchPprof('/debug/pprof/peak');
      renderDiff(base, state.heap, useMark ? 'the heap profile marked at ' + state.mark.at : 'the peak profile');
    } catch (e) {
      text('diff-note', 'Diff unavailable: ' + e.message);
    }
  }

  async function takeDelta() {
    const seconds = Math.max(1, Math.min(300, Math.round(Number($('delta-seconds').value) || 10)));
    const button = $('delta-run');
    button.disabled = true;
    text('delta-note', 'Taking a delta over ' + seconds + ' s…');
    try {
      renderDelta(await fetchPprof('/debug/pprof/heap?seconds=' + seconds), seconds);
    } catch (e) {
      text('delta-note', 'Delta unavailable: ' + e.message);
    } finally {
      button.disabled = false;
    }
  }

  async function loadFlame() {
    // Folded stacks when the library offers them as text; otherwise decode the pprof heap profile.
    for (const path of ['/metrics/memory/flamegraph', '/debug/pprof/heap?format=folded']) {
      try {
        const response = await fetch(path, { cache: 'no-store' });
        const type = response.headers.get('content-type') || '';
        if (response.ok && type.indexOf('text/plain') === 0) return renderFlame(parseFolded(await response.text()), path);
      } catch (e) { /* try the next source */ }
    }
    try {
      state.heap = await fetchPprof('/debug/pprof/heap');
      renderFlame(parsePprof(state.heap), '/debug/pprof/heap (inuse_space)');
    } catch (e) {
      text('flame-note', 'Flame graph unavailable: ' + e.message);
    }
  }

  const errors = new Map();
  function noteError(key, error) {
    if (error) errors.set(key, error.message || String(error)); else errors.delete(key);
    const el = $('error');
    el.hidden = errors.size === 0;
    el.textContent = Array.from(errors.values()).join(' · ');
  }

  async function poll(path, render) {
    try {
      const body = await getJson(path);
      render(body);
      noteError(path, null);
    } catch (e) {
      noteError(path, e);
    }
  }

  async function fastRound() {
    const now = Date.now();
    await Promise.all([
      poll('/metrics/memory/snapshot', (b) => renderSnapshot(b, now)),
      poll('/metrics/memory/health', renderHealth),
      poll('/metrics/performance', (b) => renderPerformance(b, now)),
    ]);
    await poll('/metrics/memory/trend?duration=30m&interval=2s', renderTrend);
    text('updated', fmtClock(Date.now()));
  }

  async function slowRound() {
    await poll('/metrics/memory/leaks', renderLeaks);
    await poll('/metrics/memory/allocations', renderAllocations);
    await loadFlame();
    await poll('/metrics/memory/peak', renderPeak);
    await poll('/metrics/memory/fragmentation', renderFragmentation);
    await poll('/metrics/memory/lifetimes', renderLifetimes);
    await loadDiff();
  }

  function renderStatic(data) {
    const now = Date.parse((data['/metrics/memory/snapshot'] || {}).timestamp) || Date.now();
    renderSnapshot(data['/metrics/memory/snapshot'], now);
    renderHealth(data['/metrics/memory/health']);
    renderLeaks(data['/metrics/memory/leaks']);
    renderAllocations(data['/metrics/memory/allocations']);
    // A report carries its own latency/throughput history; fall back to its final figures.
    const perf = data['/metrics/performance'];
    if (perf) renderPerformance(perf, now);
    renderTrend(data['/metrics/memory/trend']);
    if (typeof data.flamegraph_folded === 'string') renderFlame(parseFolded(data.flamegraph_folded), 'report');
    else text('flame-note', 'No heap profile in this report.');
    renderPeak(data['/metrics/memory/peak']);
    renderFragmentation(data['/metrics/memory/fragmentation']);
    renderLifetimes(data['/metrics/memory/lifetimes']);
    // A report carries folded stacks: the peak's and the current heap's for the diff, a delta's (signed).
    if (typeof data.peak_folded === 'string' && typeof data.flamegraph_folded === 'string') {
      renderDiff(decodeFolded(data.peak_folded, 'inuse_space'), decodeFolded(data.flamegraph_folded, 'inuse_space'),
                 'the peak profile');
    }
    if (typeof data.delta_folded === 'string') {
      renderDelta(decodeFolded(data.delta_folded, 'inuse_space'), pick(data, 'delta_seconds') || '?');
    }
    text('updated', data.generated_at || fmtClock(now));
  }

  function start() {
    makeChart('chart-memory', [
      { label: 'RSS', color: COLORS.rss }, { label: 'heap allocated', color: COLORS.heap },
      { label: 'jemalloc resident', color: COLORS.resident }], (v) => fmtNumber(v, 0) + ' MiB');
    makeChart('chart-allocation-rate', [{ label: 'allocations/s', color: COLORS.allocRate }], (v) => fmtNumber(v, 0) + '/s');
    makeChart('chart-latency', [{ label: 'p50', color: COLORS.p50 }, { label: 'p95', color: COLORS.p95 }],
              (v) => fmtNumber(v, 0) + ' ms');
    makeChart('chart-throughput', [{ label: 'pages/s', color: COLORS.pps }], (v) => fmtNumber(v, 1));
    if (STATIC) {
      for (const id of ['diff-mark', 'delta-run', 'diff-base']) if ($(id)) $(id).disabled = true;  // no server
      renderStatic(STATIC);
      return;
    }
    $('delta-run').addEventListener('click', takeDelta);
    $('diff-base').addEventListener('change', loadDiff);
    $('diff-mark').addEventListener('click', () => {
      if (!state.heap) { text('diff-note', 'No heap profile loaded yet.'); return; }
      state.mark = { profile: state.heap, at: fmtClock(Date.now()) };
      $('diff-base').value = 'mark';
      loadDiff();
    });
    let fastBusy = false, slowBusy = false;
    const fast = async () => { if (fastBusy) return; fastBusy = true; try { await fastRound(); } finally { fastBusy = false; } };
    const slow = async () => { if (slowBusy) return; slowBusy = true; try { await slowRound(); } finally { slowBusy = false; } };
    fast().then(slow);
    setInterval(fast, FAST_MS);
    setInterval(slow, SLOW_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
