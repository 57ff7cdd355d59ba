// The dashboard's game chart: ESPN's home win probability and Kalshi's price over
// time, the gap between them shaded, period starts marked, the biggest moves labelled.
// Axis, tick and move logic are pure functions on window.LivegamesChart, so the
// browser tests can check them directly; draw() is the only part that touches a canvas.
"use strict";
window.LivegamesChart = (() => {
  // A step of 1, 2 or 5 times a power of ten that cuts `span` into about `count` parts.
  function niceStep(span, count) {
    if (!(span > 0) || !(count > 0)) return 1;
    const raw = span / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const fraction = raw / power;
    // 2.5 only as 25 %: quarters read well on a probability axis, 2.5 % steps do not.
    const quarter = Math.abs(power - 0.1) < 1e-12 && fraction > 2 && fraction <= 2.5;
    const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : quarter ? 2.5 : fraction <= 5 ? 5 : 10;
    return Number((nice * power).toPrecision(12));
  }

  // Multiples of `step` from lo to hi (inclusive), rounded so 0.1 + 0.2 prints as 0.3.
  function ticksBetween(lo, hi, step) {
    const ticks = [];
    const first = Math.ceil(lo / step - 1e-9);
    for (let k = first; k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
    return ticks;
  }

  // The probability axis: the data's range with a margin, widened to at least 10
  // points, snapped outwards to a nice step and kept within 0..1. A game between 85 %
  // and 95 % fills the chart instead of lying flat along the top.
  function probAxis(values, count = 4) {
    const present = values.filter((v) => v != null && Number.isFinite(v));
    if (!present.length) return { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1] };
    let lo = Math.min(...present), hi = Math.max(...present);
    const minSpan = 0.1;
    if (hi - lo < minSpan) {
      const mid = (lo + hi) / 2;
      lo = mid - minSpan / 2;
      hi = mid + minSpan / 2;
    }
    const margin = (hi - lo) * 0.08;
    lo -= margin;
    hi += margin;
    if (lo < 0) { hi -= lo; lo = 0; }
    if (hi > 1) { lo = Math.max(0, lo - (hi - 1)); hi = 1; }
    const step = niceStep(hi - lo, count);
    lo = Math.max(0, Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12)));
    hi = Math.min(1, Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12)));
    return { lo, hi, ticks: ticksBetween(lo, hi, step) };
  }

  const SECOND = 1000, MINUTE = 60 * SECOND, HOUR = 60 * MINUTE;
  const TIME_STEPS = [100, 200, 500].concat([1, 2, 5, 10, 15, 30].map((s) => s * SECOND))
    .concat([1, 2, 5, 10, 15, 30].map((m) => m * MINUTE), [1, 2, 3, 6, 12, 24].map((h) => h * HOUR));

  // Wall-clock ticks (ms) between t0 and t1 on whole seconds, minutes or hours, about
  // `count` of them, evenly spaced; `offsetMs` aligns them to local time.
  function timeTicks(t0, t1, count = 6, offsetMs = 0) {
    const span = Math.max(1, t1 - t0);
    const step = TIME_STEPS.find((s) => span / s <= count) || TIME_STEPS[TIME_STEPS.length - 1];
    const ticks = [];
    for (let t = Math.ceil((t0 + offsetMs) / step) * step - offsetMs; t <= t1; t += step) ticks.push(t);
    return { step, ticks };
  }

  // "19:42" on minute steps and coarser, "19:42:05" on second steps, "19:42:05.2"
  // on finer ones (local time).
  function timeLabel(t, step) {
    const d = new Date(t);
    const two = (n) => String(n).padStart(2, "0");
    const hm = two(d.getHours()) + ":" + two(d.getMinutes());
    if (step >= MINUTE) return hm;
    const hms = hm + ":" + two(d.getSeconds());
    return step >= SECOND ? hms : hms + "." + Math.floor(d.getMilliseconds() / 100);
  }

  // How a fan names a period: Q1-Q4 (NBA, NFL) or P1-P3 (NHL), then OT, 2OT...
  function periodName(period, league) {
    const regulation = league === "nhl" ? 3 : 4;
    if (period <= regulation) return (league === "nhl" ? "P" : "Q") + period;
    const extra = period - regulation;
    return extra > 1 ? extra + "OT" : "OT";
  }

  // Where each period starts: the time of the first point in it.
  function periodStarts(times, periods, league) {
    const starts = [];
    let current = null;
    for (let i = 0; i < times.length; i++) {
      const p = periods[i];
      if (p == null || p === current) continue;
      if (current == null || p > current) starts.push({ t: times[i], label: periodName(p, league) });
      current = p;
    }
    return starts;
  }

  // The `count` largest moves of a series: for each point, the change since the value
  // `windowMs` earlier; the biggest, none overlapping another's window, in time order.
  // Each move: { from, to, t0, t1, i0, i1, delta }.
  function biggestMoves(times, values, windowMs, count = 3, minDelta = 0.05) {
    const candidates = [];
    // Indices of the window's lowest and highest values (monotonic queues), so each
    // point finds the extreme of the last `windowMs` in constant time.
    const lows = [], highs = [];
    let lowHead = 0, highHead = 0;
    for (let i = 0; i < times.length; i++) {
      const v = values[i];
      if (v == null) continue;
      const since = times[i] - windowMs;
      while (lowHead < lows.length && times[lows[lowHead]] < since) lowHead++;
      while (highHead < highs.length && times[highs[highHead]] < since) highHead++;
      const low = lowHead < lows.length ? lows[lowHead] : -1;
      const high = highHead < highs.length ? highs[highHead] : -1;
      const rise = low >= 0 ? v - values[low] : 0;
      const fall = high >= 0 ? v - values[high] : 0;
      const [from, delta] = rise >= -fall ? [low, rise] : [high, fall];
      if (from >= 0 && Math.abs(delta) >= minDelta) candidates.push({ i0: from, i1: i, delta });
      while (lows.length > lowHead && values[lows[lows.length - 1]] >= v) lows.pop();
      lows.push(i);
      while (highs.length > highHead && values[highs[highs.length - 1]] <= v) highs.pop();
      highs.push(i);
    }
    candidates.sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta));
    const chosen = [];
    for (const c of candidates) {
      if (chosen.length >= count) break;
      const overlaps = chosen.some((o) => c.i0 < o.i1 && o.i0 < c.i1); // touching is fine: a spike and its return
      if (!overlaps) chosen.push(c);
    }
    return chosen
      .sort((a, b) => a.i0 - b.i0)
      .map((c) => ({ ...c, t0: times[c.i0], t1: times[c.i1], from: values[c.i0], to: values[c.i1] }));
  }

  // The gap between two series where both are present: now, and the widest.
  function gapSummary(times, a, b) {
    let widest = null, now = null;
    for (let i = 0; i < times.length; i++) {
      if (a[i] == null || b[i] == null) continue;
      const gap = b[i] - a[i];
      now = { t: times[i], gap };
      if (!widest || Math.abs(gap) > Math.abs(widest.gap)) widest = { t: times[i], gap, i };
    }
    return { now, widest };
  }

  // Everything the drawing needs, from the data and the canvas size: pure.
  function layout(data, width, height) {
    const pad = { l: 46, r: 16, t: 22, b: 26 };
    const w = Math.max(1, width - pad.l - pad.r), h = Math.max(1, height - pad.t - pad.b);
    const { times } = data;
    // From the first point to the latest: the series always spans the full width.
    const t0 = times.length ? times[0] : 0;
    const t1 = times.length > 1 ? Math.max(times[times.length - 1], t0 + 1) : t0 + SECOND;
    const y = probAxis(data.prob.concat(data.price));
    const x = timeTicks(t0, t1, Math.max(2, Math.floor(w / 110)), data.tzOffsetMs || 0);
    const span = t1 - t0;
    return {
      pad, w, h, t0, t1, y, x,
      px: (t) => pad.l + ((t - t0) / span) * w,
      py: (v) => pad.t + (1 - (v - y.lo) / (y.hi - y.lo)) * h,
      periods: periodStarts(times, data.periods, data.league),
      moves: {
        prob: biggestMoves(times, data.prob, span / 25),
        price: biggestMoves(times, data.price, span / 25),
      },
      gap: gapSummary(times, data.prob, data.price),
    };
  }

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // Runs of indices where `keep(i)` holds.
  function runs(n, keep) {
    const out = [];
    let start = -1;
    for (let i = 0; i <= n; i++) {
      const ok = i < n && keep(i);
      if (ok && start < 0) start = i;
      if (!ok && start >= 0) { out.push([start, i]); start = -1; }
    }
    return out;
  }

  // The canvas sized to its box at the screen's pixel ratio, cleared, in CSS pixels.
  function clearedCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const box = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(box.width * ratio));
    canvas.height = Math.max(1, Math.round(box.height * ratio));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    return { ctx, box };
  }

  function draw(canvas, data) {
    const { ctx, box } = clearedCanvas(canvas);
    const L = layout(data, box.width, box.height);
    const { pad, w, h, px, py, times } = { ...L, times: data.times };
    const colours = { prob: css("--accent"), price: css("--c3"), gap: css("--c2"), grid: css("--line"), text: css("--muted") };
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = colours.grid;
    ctx.fillStyle = colours.text;
    ctx.textAlign = "right";
    for (const v of L.y.ticks) {
      ctx.beginPath(); ctx.moveTo(pad.l, py(v)); ctx.lineTo(pad.l + w, py(v)); ctx.stroke();
      ctx.fillText(Math.round(v * 100) + "%", pad.l - 6, py(v) + 4);
    }
    ctx.textAlign = "center";
    for (const t of L.x.ticks) {
      const xt = px(t);
      ctx.beginPath(); ctx.moveTo(xt, pad.t + h); ctx.lineTo(xt, pad.t + h + 4); ctx.stroke();
      ctx.fillText(timeLabel(t, L.x.step), Math.min(Math.max(xt, pad.l + 24), pad.l + w - 24), pad.t + h + 17);
    }
    // Period starts: dashed lines, named along the top.
    ctx.setLineDash([3, 4]);
    ctx.textAlign = "left";
    for (const p of L.periods) {
      const xp = px(p.t);
      ctx.beginPath(); ctx.moveTo(xp, pad.t); ctx.lineTo(xp, pad.t + h); ctx.stroke();
      ctx.fillText(p.label, xp + 3, pad.t - 8);
    }
    ctx.setLineDash([]);
    // The gap between ESPN and the market, shaded where both are known.
    ctx.fillStyle = colours.gap;
    ctx.globalAlpha = 0.18;
    for (const [a, b] of runs(times.length, (i) => data.prob[i] != null && data.price[i] != null)) {
      ctx.beginPath();
      for (let i = a; i < b; i++) ctx.lineTo(px(times[i]), py(data.prob[i]));
      for (let i = b - 1; i >= a; i--) ctx.lineTo(px(times[i]), py(data.price[i]));
      ctx.closePath();
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    for (const [key, colour] of [["price", colours.price], ["prob", colours.prob]]) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      for (const [a, b] of runs(times.length, (i) => data[key][i] != null)) {
        ctx.beginPath();
        for (let i = a; i < b; i++) ctx.lineTo(px(times[i]), py(data[key][i]));
        // A lone point still shows.
        if (b - a === 1) ctx.arc(px(times[a]), py(data[key][a]), 1.5, 0, 2 * Math.PI);
        ctx.stroke();
      }
      // The biggest moves: the stretch thickened, its size written beside it.
      ctx.fillStyle = colour;
      ctx.font = "600 11px system-ui, sans-serif";
      for (const m of L.moves[key]) {
        ctx.lineWidth = 5;
        ctx.globalAlpha = 0.45;
        ctx.beginPath();
        for (let i = m.i0; i <= m.i1; i++) if (data[key][i] != null) ctx.lineTo(px(times[i]), py(data[key][i]));
        ctx.stroke();
        ctx.globalAlpha = 1;
        const label = (m.delta > 0 ? "+" : "−") + Math.round(Math.abs(m.delta) * 100);
        const above = m.delta > 0 ? -8 : 16;
        ctx.textAlign = "center";
        ctx.fillText(label, Math.min(px(m.t1), pad.l + w - 12), Math.min(Math.max(py(m.to) + above, pad.t + 10), pad.t + h - 4));
      }
      ctx.font = "11px system-ui, sans-serif";
    }
    return L;
  }

  // A value axis for figures over time: from 0 (or the data's least, if negative) to
  // the data's most, snapped outwards to a nice step; a flat or empty series still
  // gets a readable axis.
  function valueAxis(values, count = 3) {
    const present = values.filter((v) => v != null && Number.isFinite(v));
    const lo = Math.min(0, ...present);
    let hi = Math.max(0, ...present);
    if (hi - lo <= 0) hi = lo + 1;
    const step = niceStep(hi - lo, count);
    const top = Number((Math.ceil(hi / step - 1e-9) * step).toPrecision(12));
    const bottom = Number((Math.floor(lo / step + 1e-9) * step).toPrecision(12));
    return { lo: bottom, hi: top, ticks: ticksBetween(bottom, top, step) };
  }

  // Lines over wall-clock time: `lines` is [{ label, points: [[t_ms, value|null]] }],
  // `format` writes an axis value. The same time ticks as the game chart.
  function drawSeries(canvas, lines, format) {
    const { ctx, box } = clearedCanvas(canvas);
    const pad = { l: 52, r: 10, t: 8, b: 22 };
    const w = Math.max(1, box.width - pad.l - pad.r), h = Math.max(1, box.height - pad.t - pad.b);
    const times = lines.flatMap((l) => l.points.map((p) => p[0]));
    const t0 = times.length ? Math.min(...times) : Date.now() - MINUTE;
    const t1 = Math.max(times.length ? Math.max(...times) : Date.now(), t0 + SECOND);
    const y = valueAxis(lines.flatMap((l) => l.points.map((p) => p[1])));
    const x = timeTicks(t0, t1, Math.max(2, Math.floor(w / 90)));
    const px = (t) => pad.l + ((t - t0) / (t1 - t0)) * w;
    const py = (v) => pad.t + (1 - (v - y.lo) / (y.hi - y.lo)) * h;
    const colours = [css("--accent"), css("--bad"), css("--c3"), css("--c2")];
    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = css("--line");
    ctx.fillStyle = css("--muted");
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    for (const v of y.ticks) {
      ctx.beginPath(); ctx.moveTo(pad.l, py(v)); ctx.lineTo(pad.l + w, py(v)); ctx.stroke();
      ctx.fillText(format(v), pad.l - 6, py(v) + 4);
    }
    ctx.textAlign = "center";
    for (const t of x.ticks) ctx.fillText(timeLabel(t, x.step), Math.min(Math.max(px(t), pad.l + 24), pad.l + w - 24), pad.t + h + 16);
    lines.forEach((line, k) => {
      ctx.strokeStyle = colours[k % colours.length];
      ctx.lineWidth = 2;
      const pts = line.points;
      for (const [a, b] of runs(pts.length, (i) => pts[i][1] != null && Number.isFinite(pts[i][1]))) {
        ctx.beginPath();
        for (let i = a; i < b; i++) ctx.lineTo(px(pts[i][0]), py(pts[i][1]));
        if (b - a === 1) ctx.arc(px(pts[a][0]), py(pts[a][1]), 1.5, 0, 2 * Math.PI);
        ctx.stroke();
      }
    });
    return { x, y, t0, t1 };
  }

  return { niceStep, ticksBetween, probAxis, valueAxis, timeTicks, timeLabel, periodName, periodStarts, biggestMoves, gapSummary, layout, draw, drawSeries };
})();
