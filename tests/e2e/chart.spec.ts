// The chart's maths (assets/chart.js, `window.LivegamesChart`) with known answers:
// the probability axis, tick steps, time ticks and labels, period names, the biggest
// moves and the gap between ESPN and the market, run in the page that uses them.
import { test, expect } from "./support/fixtures";

const cases: [string, unknown][] = [
  // A game between 85 % and 95 % fills the chart in 5-point steps.
  ["C.probAxis([0.85, 0.95, 0.9])", { lo: 0.8, hi: 1, ticks: [0.8, 0.85, 0.9, 0.95, 1] }],
  // A flat series gets at least 10 points around it.
  ["C.probAxis([0.5, 0.5])", { lo: 0.4, hi: 0.6, ticks: [0.4, 0.45, 0.5, 0.55, 0.6] }],
  ["C.probAxis([0.02, 0.04, null])", { lo: 0, hi: 0.15, ticks: [0, 0.05, 0.1, 0.15] }],
  // The whole range in quarters, and nothing measured: the whole range.
  ["C.probAxis([0.1, 0.9])", { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1] }],
  ["C.probAxis([null])", { lo: 0, hi: 1, ticks: [0, 0.25, 0.5, 0.75, 1] }],
  ["[C.niceStep(7, 4), C.niceStep(0.33, 4), C.niceStep(1, 4), C.niceStep(4000, 5)]", [2, 0.1, 0.25, 1000]],
  // Time ticks on whole 30 s, aligned however the range starts.
  ["C.timeTicks(1000, 101000, 6, 0)", { step: 30000, ticks: [30000, 60000, 90000] }],
  ["C.timeTicks(0, 3 * 3600e3, 6, 0).step", 1800000],
  // Aligned to local time: an offset of 30 min moves hourly ticks to :30 UTC.
  ["C.timeTicks(0, 5 * 3600e3, 5, 1800e3).ticks.slice(0, 2)", [1800000, 5400000]],
  ["C.timeLabel(new Date(2026, 0, 1, 19, 42, 5).getTime(), 1000)", "19:42:05"],
  ["C.timeLabel(new Date(2026, 0, 1, 19, 42, 5).getTime(), 60000)", "19:42"],
  ["C.timeLabel(new Date(2026, 0, 1, 19, 42, 5, 250).getTime(), 200)", "19:42:05.2"],
  ["C.timeTicks(0, 2500, 6, 0)", { step: 500, ticks: [0, 500, 1000, 1500, 2000, 2500] }],
  ["[1, 4, 5, 6].map(p => C.periodName(p, 'nba')).concat([3, 4].map(p => C.periodName(p, 'nhl')))", ["Q1", "Q4", "OT", "2OT", "P3", "OT"]],
  ["C.periodStarts([1, 2, 3, 4, 5], [1, 1, null, 2, 3], 'nba')", [{ t: 1, label: "Q1" }, { t: 4, label: "Q2" }, { t: 5, label: "Q3" }]],
  // The biggest moves: a 25-point run in 5 s, a fall that came back, noise ignored.
  [
    `(() => { const t = [...Array(100).keys()].map(i => i * 1000);
              const v = t.map((_, i) => i >= 40 && i < 45 ? 0.5 + (i - 40) * 0.05 : i >= 45 ? 0.75 : 0.5 + (i % 2) * 0.01);
              v[70] = 0.55; v[60] = null;
              return C.biggestMoves(t, v, 5000).map(m => [m.t0, m.t1, Math.round(m.delta * 100)]); })()`,
    [[40000, 45000, 25], [69000, 70000, -20], [70000, 71000, 20]],
  ],
  ["C.gapSummary([1, 2, 3], [0.5, 0.6, null], [0.55, 0.4, 0.3])", { now: { t: 2, gap: -0.19999999999999996 }, widest: { t: 2, gap: -0.19999999999999996, i: 1 } }],
  // The series runs from edge to edge of the plot, however few its points.
  [
    `(() => { const L = C.layout({ times: [5000, 9000, 65000], prob: [0.6, 0.7, 0.65], price: [0.62, null, 0.7], periods: [1, 1, 2], league: 'nba' }, 800, 400);
              return [L.px(5000) === L.pad.l, Math.abs(L.px(65000) - (L.pad.l + L.w)) < 1e-9, L.periods.length]; })()`,
    [true, true, 2],
  ],
];

test("the chart's axes, ticks, periods and moves have their known answers", async ({ page, serve }) => {
  await page.goto(serve.url + "/#/live");
  await page.waitForFunction(() => typeof (window as any).LivegamesChart === "object");
  for (const [expression, expected] of cases) {
    const got = await page.evaluate((e) => new Function("C", `return ${e};`)((window as any).LivegamesChart), expression);
    expect.soft(got, expression).toEqual(expected);
  }
});
