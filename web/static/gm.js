// gridmeter pages: live values and charts (Documentation/web.md "Front end").
// SPDX-License-Identifier: GPL-2.0
// No inline scripts anywhere (CSP default-src 'self'): the pages pass data in
// data- attributes and <script type="application/json">; this file reads them.
(function () {
  'use strict';
  var THIN = '\u202f', NBSP = '\u00a0';

  // An integer in 1/scale of the unit, shown with `decimals` decimals,
  // rounded half away from zero, thin-space thousands, as lib/web's hb_milli.
  function fmt(value, scale, decimals, unit) {
    scale = scale > 0 ? scale : 1;
    decimals = Math.max(0, Math.min(6, decimals | 0));
    var neg = value < 0, mag = Math.abs(value), p = Math.pow(10, decimals), q;
    var k = Math.round(Math.log10(scale));
    if (Math.pow(10, k) === scale && Number.isSafeInteger(mag)) {
      if (k >= decimals) {                      // exact integer rounding
        var div = Math.pow(10, k - decimals);
        q = Math.floor(mag / div) + (mag % div >= div / 2 ? 1 : 0);
      } else {
        q = mag * Math.pow(10, decimals - k);
      }
    } else {
      q = Math.round(mag * p / scale);
    }
    var whole = String(Math.floor(q / p)), frac = String(q % p);
    var g = '';
    for (var i = 0; i < whole.length; i++) {
      if (i && (whole.length - i) % 3 === 0) g += THIN;
      g += whole[i];
    }
    var s = (neg && q ? '-' : '') + g;
    if (decimals) s += '.' + '0'.repeat(decimals - frac.length) + frac;
    return unit ? s + NBSP + unit : s;
  }

  function num(v, d) {
    var n = parseFloat(v);
    return isFinite(n) ? n : d;
  }

  // ---- live values over server-sent events ------------------------------
  function showLive(el, v) {
    if (typeof v === 'number') {
      var d = el.dataset;
      el.textContent = fmt(v, num(d.scale, 1000), num(d.decimals, 1), d.unit || '');
      d.value = String(v);
    } else if (v === null || v === undefined) {
      el.textContent = '\u2013';
      delete el.dataset.value;
    } else {
      el.textContent = String(v);
      el.dataset.value = String(v);
    }
  }

  function applyLive(obj) {
    Object.keys(obj).forEach(function (key) {
      var sel = '[data-live="' + CSS.escape(key) + '"]';
      document.querySelectorAll(sel).forEach(function (el) {
        if (el !== document.body) showLive(el, obj[key]);
      });
    });
  }

  function liveState(state, words) {
    document.body.dataset.liveState = state;
    document.querySelectorAll('[data-live-status]').forEach(function (el) {
      el.textContent = words;
    });
  }

  function startLive() {
    var url = document.body.dataset.live;
    if (!url || !window.EventSource) return;
    var es = new EventSource(url);
    window.gmLive = es;
    es.addEventListener('open', function () { liveState('open', 'Live'); });
    es.addEventListener('error', function () {
      liveState('error', es.readyState === 2 ? 'Not live: reload the page' : 'Reconnecting\u2026');
    });
    es.addEventListener('message', function (e) {
      var obj;
      try { obj = JSON.parse(e.data); } catch (err) { return; }
      if (obj && typeof obj === 'object') applyLive(obj);
    });
  }

  // ---- charts (uPlot, from the figure's JSON) -----------------------------
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function two(n) { return (n < 10 ? '0' : '') + n; }
  // UTC seconds in the browser's time zone: 24-hour times within two days,
  // "14 Nov" within a year, "Nov 2026" beyond; span 0: the full date and time.
  function when(t, span) {
    var dt = new Date(t * 1000), hm = two(dt.getHours()) + ':' + two(dt.getMinutes());
    if (!span) return dt.getFullYear() + '-' + two(dt.getMonth() + 1) + '-' + two(dt.getDate()) + ' ' + hm;
    if (span <= 2 * 86400) return hm;
    if (span <= 400 * 86400) return dt.getDate() + ' ' + MONTHS[dt.getMonth()];
    return MONTHS[dt.getMonth()] + ' ' + dt.getFullYear();
  }

  var COLORS = ['#1f5fbf', '#b35900', '#2e7d32', '#6a3d9a', '#a6192e', '#00707a'];

  function chartSize(fig) {
    var w = Math.max(240, Math.floor(fig.clientWidth || 320));
    return { width: w, height: Math.round(Math.max(180, Math.min(320, w * 0.5))) };
  }

  function drawChart(fig, i) {
    var src = fig.querySelector('script.gm-chart-data');
    if (!src || !window.uPlot) return;
    var data;
    try { data = JSON.parse(src.textContent); } catch (err) { return; }
    if (!data || !Array.isArray(data.x) || !Array.isArray(data.series)) return;
    var d = fig.dataset, scale = num(d.scale, 1), dec = num(d.decimals, 2);
    var unit = d.unit || '', bars = d.kind === 'bars', n = data.series.length;
    var label = function (v) { return v === null || v === undefined ? '\u2013' : fmt(v, scale, dec, unit); };
    var series = [{ label: d.xlabel || 'Time' }];
    data.series.forEach(function (s, k) {
      var c = s.color || COLORS[k % COLORS.length];
      var o = { label: s.label || ('Series ' + (k + 1)), stroke: c, width: 2,
                value: function (u, v) { return label(v); }, points: { show: !bars && data.x.length < 60 } };
      if (bars) {
        o.fill = c + 'cc';
        // one series: centred; two: side by side; more: narrower, centred
        o.paths = uPlot.paths.bars({ size: [n === 2 ? 0.4 : 0.8 / n, 64],
                                     align: n === 2 ? (k ? 1 : -1) : 0 });
      }
      series.push(o);
    });
    var size = chartSize(fig), xs = data.x, step = xs.length > 1 ? (xs[xs.length - 1] - xs[0]) / (xs.length - 1) : 3600;
    var opts = {
      width: size.width, height: size.height, series: series,
      scales: {
        x: { time: d.time !== 'no', range: bars && xs.length ? function () {
          return [xs[0] - step * 0.6, xs[xs.length - 1] + step * 0.6];   // whole bars at both ends
        } : undefined },
        y: { range: function (u, lo, hi) { return [Math.min(0, lo), hi > 0 ? hi * 1.05 : 1]; } },
      },
      axes: [{ values: function (u, splits) {
        var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
        return splits.map(function (v) { return when(v, span); });
      } }, { size: 64, label: unit, values: function (u, splits) {
        // as many decimals as the tick spacing needs, so every tick reads exactly
        var inc = splits.length > 1 ? Math.abs(splits[1] - splits[0]) / scale : 1;
        // (the fewest decimals that show the spacing exactly: 0.25 needs 2)
        var dd = 0;
        while (dd < 6 && inc > 0 && Math.abs(inc * Math.pow(10, dd) - Math.round(inc * Math.pow(10, dd))) > 1e-6) dd++;
        return splits.map(function (v) { return fmt(Math.round(v), scale, dd, ''); });
      } }],
      legend: { live: true },
      cursor: { points: { show: !bars } },
    };
    series[0].value = function (u, v) { return v === null || v === undefined ? '\u2013' : when(v, 0); };
    var plot = document.createElement('div');
    plot.className = 'gm-chart-plot';
    plot.setAttribute('aria-hidden', 'true');   // the table below says the same in words
    fig.insertBefore(plot, src);
    var cols = [data.x].concat(data.series.map(function (s) { return s.values; }));
    var u = new uPlot(opts, cols, plot);
    window.gmCharts[fig.id || ('chart' + i)] = u;
    if (window.ResizeObserver) {
      var last = size.width;
      new ResizeObserver(function () {
        var s = chartSize(fig);
        if (s.width !== last) { last = s.width; u.setSize(s); }
      }).observe(fig);
    }
  }

  // ---- forms that ask before they act -------------------------------------
  document.addEventListener('submit', function (e) {
    var m = e.target && e.target.dataset ? e.target.dataset.confirm : null;
    if (m && !window.confirm(m)) e.preventDefault();
  });

  function start() {
    window.gmCharts = window.gmCharts || {};
    window.gmFormat = fmt;
    document.querySelectorAll('figure.gm-chart').forEach(drawChart);
    startLive();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
