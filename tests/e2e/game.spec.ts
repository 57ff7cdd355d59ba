// #/live/{id}: the chart grows from the stream and fits its axes, the page closes its
// socket when left, reconnects after a drop without a gap, reloads after a server
// restart, and stays within its memory at 50 frames a second.
import type { Page } from "@playwright/test";
import { test, expect, screenshot } from "./support/fixtures";
import { Proxy } from "./support/proxy";
import { waitFor, type Game } from "./support/serve";

/** What the chart drew, in numbers (`window.__livegames.chart()`): a canvas has no text
 * to read, so the page says what it drew. */
interface Chart {
  points: number; yLo: number; yHi: number; xTicks: number[]; xStep: number;
  plotLeft: number; plotRight: number; xFirst: number; xLast: number;
  periods: string[]; moves: { prob: unknown[]; price: unknown[] }; values: number[];
}

const chartOf = (page: Page) => page.evaluate(() => (window as any).__livegames.chart() as Chart);
const seqsOf = (page: Page) => page.evaluate(() => (window as any).__livegames.seqs() as number[]);
const lastSeqOf = (page: Page) => page.evaluate(() => Number(document.querySelector("#chart")?.getAttribute("data-last-seq") || 0));

/** The series spans the plot from edge to edge, the probability axis fits the data
 * closely (not 0-100 %), the time ticks are evenly spaced, and the periods are marked. */
function expectChartFits(c: Chart) {
  expect(c.points).toBeGreaterThanOrEqual(2);
  expect(Math.abs(c.xFirst - c.plotLeft), "starts at the left edge").toBeLessThan(0.5);
  expect(Math.abs(c.xLast - c.plotRight), "ends at the right edge").toBeLessThan(0.5);
  const lo = Math.min(...c.values);
  const hi = Math.max(...c.values);
  expect(c.yLo, "every value on the axis").toBeLessThanOrEqual(lo);
  expect(c.yHi, "every value on the axis").toBeGreaterThanOrEqual(hi);
  expect(c.yHi - c.yLo, `the axis fits ${lo}..${hi}`).toBeLessThanOrEqual(Math.min(2 * Math.max(hi - lo, 0.1), 1) + 1e-9);
  expect(c.xTicks.length, "a time axis").toBeGreaterThanOrEqual(2);
  for (let i = 1; i < c.xTicks.length; i++) {
    expect(Math.abs(c.xTicks[i] - c.xTicks[i - 1] - c.xStep), "time ticks evenly spaced").toBeLessThan(1);
  }
  expect(c.periods.length, "a live game's periods are marked").toBeGreaterThan(0);
}

test("a game's chart grows from the stream, fits its axes, and its socket closes on leaving", async ({ page, serve }) => {
  const id = await serve.liveGame();
  const { games } = await serve.json<{ games: Game[] }>("/api/live/games");
  const game = games.find((g) => g.id === id)!;
  await page.goto(serve.url + "/#/live");
  await page.getByRole("link", { name: `${game.away.abbreviation} @ ${game.home.abbreviation}`, exact: true }).click();
  await expect(page.getByRole("img", { name: "Win probability and market price chart" })).toBeVisible();
  await expect(page.getByRole("status", { name: "connection" })).toHaveText("live");
  await expect.poll(async () => (await chartOf(page)).points, { message: "the chart from the timeline" }).toBeGreaterThan(0);
  const first = (await chartOf(page)).points;
  await expect.poll(async () => (await chartOf(page)).points, { message: "the chart grows from the stream" }).toBeGreaterThanOrEqual(first + 40);
  await expect(page.locator("#scoreline")).toHaveText(new RegExp(`^${game.away.abbreviation} \\d+ – \\d+ ${game.home.abbreviation}$`));
  await expect(page.getByText(/^live · Q[1-4]|^live · (OT|\d+OT|End of)/)).toBeVisible();
  await expect(page.getByRole("heading", { name: "Biggest moves" })).toBeVisible();
  expectChartFits(await chartOf(page));

  // Narrower, the chart is redrawn to the new width and still fits; and back.
  await page.setViewportSize({ width: 900, height: 700 });
  await expect.poll(async () => (await chartOf(page)).plotRight).toBeLessThan(900);
  expectChartFits(await chartOf(page));
  await page.setViewportSize({ width: 1280, height: 800 });
  await expect.poll(async () => (await chartOf(page)).plotRight).toBeGreaterThan(1000);

  expect(await serve.metric("livegames_ws_connections ")).toBe(1);
  // Chromium offers permessage-deflate: the page read its frames compressed.
  expect(await serve.metric("livegames_ws_deflate_connections_total")).toBe(1);
  // For the README's picture, a little time for the game to make a big move (the
  // picture is taken either way).
  await expect
    .poll(async () => { const m = (await chartOf(page)).moves; return m.prob.length + m.price.length; }, { timeout: 20_000 })
    .toBeGreaterThan(0)
    .catch(() => {});
  // The biggest moves the chart marks are the table's rows, oldest first.
  const moves = page.getByRole("table", { name: "Biggest moves" }).getByRole("row").filter({ has: page.getByRole("cell") });
  await expect
    .poll(async () => {
      const marked = (await chartOf(page)).moves;
      const n = marked.prob.length + marked.price.length;
      const rows = await moves.allInnerTexts();
      if (n === 0) return rows.join("|") === "No move of 5 points or more yet." || rows.join("|");
      return (rows.length === n && rows.every((r) => /^(ESPN|Market)\s+\d+% → \d+%\s+\d\d:\d\d:\d\d/.test(r))) || `${n} moves marked: ${rows.join("|")}`;
    })
    .toBe(true);
  await screenshot(page, "live-game");

  await page.getByRole("link", { name: "← All games" }).click();
  await expect.poll(() => serve.metric("livegames_ws_connections "), { message: "the socket closed on leaving" }).toBe(0);
  // The browser saw the closing handshake complete (1000, clean), not a dropped socket (1006).
  await expect.poll(() => page.evaluate(() => (window as any).__livegamesLastClose ?? null)).toEqual({ code: 1000, wasClean: true });
});

test("after a dropped connection the page reconnects and fills the gap, every point once", async ({ page, serve }) => {
  const id = await serve.liveGame();
  const proxy = await Proxy.start(serve.addr);
  try {
    await page.goto(`${proxy.url}/#/live/${id}`);
    const connection = page.getByRole("status", { name: "connection" });
    await expect(connection).toHaveText("live");
    await expect.poll(async () => (await chartOf(page)).points).toBeGreaterThan(5);

    await proxy.cut();
    await expect(connection).toHaveText(/^disconnected \(\d+\); retrying in [\d.]+ s$/);
    const seenBefore = await lastSeqOf(page);
    // The server moves on while the page is cut off.
    await waitFor("frames the page missed", async () => ((await serve.timelineSeqs(id, seenBefore + 1)).length >= 10 ? true : null));
    await proxy.restore();
    const missedTo = (await serve.timelineSeqs(id, seenBefore + 1)).at(-1)!;
    await expect(connection).toHaveText("live");
    await expect.poll(() => lastSeqOf(page), { message: "the page catches up" }).toBeGreaterThanOrEqual(missedTo);

    const shown = await seqsOf(page);
    const expected = (await serve.timelineSeqs(id, shown[0])).filter((s) => s <= shown.at(-1)!);
    expect(shown, "the chart has every point, none twice, across the drop").toEqual(expected);
    await expect(page.locator("#chart")).toHaveAttribute("data-holes", "0");
  } finally {
    await proxy.cut();
  }
});

test("after a server restart the page reloads the game from the new server", async ({ page, serve }) => {
  const id = await serve.liveGame();
  await page.goto(`${serve.url}/#/live/${id}`);
  const connection = page.getByRole("status", { name: "connection" });
  await expect(connection).toHaveText("live");
  await expect.poll(async () => (await chartOf(page)).points).toBeGreaterThan(5);

  await serve.stop();
  await expect(connection).toHaveText(/retrying in/);
  // The scenario: away for a second, then a new run five times faster, already past
  // the page's seq when it returns: only the epoch tells the page that these seqs are
  // not the ones it had.
  await page.waitForTimeout(1000);
  await serve.restart(["--rate", "100"]);
  await expect(connection).toHaveText("live");
  await expect(page.getByText("The server restarted; reloading the game.")).toBeVisible();
  // The page shows the new server's timeline, not a mix of both runs.
  await expect
    .poll(async () => {
      const shown = await seqsOf(page);
      if (shown.length <= 3) return "only " + shown.length + " points";
      const expected = (await serve.timelineSeqs(id, shown[0])).filter((s) => s <= shown.at(-1)!);
      return JSON.stringify(shown) === JSON.stringify(expected) ? "the new server's" : `${shown} vs the new server's ${expected}`;
    })
    .toBe("the new server's");
});

test.describe("at 50 frames a second", () => {
  // Market ticks on top of plays: about 50 frames a second on one game.
  test.use({ serveArgs: ["--rate", "70"] });

  test("the page keeps up for 150 s and its heap stays flat", async ({ page, serve }) => {
    test.setTimeout(300_000);
    const id = await serve.liveGame();
    // A small cap, so the run thins the series several times.
    await page.goto(`${serve.url}/?cap=1000#/live/${id}`);
    await expect(page.getByRole("status", { name: "connection" })).toHaveText("live");
    const cdp = await page.context().newCDPSession(page);
    const heapAfterGc = async () => {
      await cdp.send("HeapProfiler.collectGarbage");
      return (await cdp.send("Runtime.getHeapUsage")).usedSize;
    };
    const runMs = 150_000;
    const started = Date.now();
    const startSeq = await lastSeqOf(page);
    const serverStart = (await serve.json<{ games: Game[] }>("/api/live/games")).games.find((g) => g.id === id)!.seq;
    const samples: number[] = [];
    let slowestAnswerMs = 0;
    while (Date.now() - started < runMs) {
      await page.waitForTimeout(10_000); // one sample every 10 s: the measurement's pace
      const asked = Date.now();
      await page.evaluate(() => performance.now());
      slowestAnswerMs = Math.max(slowestAnswerMs, Date.now() - asked);
      expect((await chartOf(page)).points, "the cap holds").toBeLessThanOrEqual(1000);
      samples.push(await heapAfterGc());
    }
    const frames = (await lastSeqOf(page)) - startSeq;
    const serverFrames = (await serve.json<{ games: Game[] }>("/api/live/games")).games.find((g) => g.id === id)!.seq - serverStart;
    // The stream runs at ~50 frames/s (fewer on a busy machine): the page must keep up
    // with whatever the server sent, within its 200 ms batching.
    expect(serverFrames / (runMs / 1000), "the stream was busy enough to mean something").toBeGreaterThanOrEqual(30);
    expect(frames, `the page kept up: ${frames} of ${serverFrames} frames`).toBeGreaterThanOrEqual(0.97 * serverFrames);
    expect(slowestAnswerMs, "the page never froze").toBeLessThan(2000);
    // After warm-up (the first samples), the heap does not keep growing.
    const settled = samples[2];
    const peak = Math.max(...samples.slice(2));
    expect(peak - settled, `heap after GC: ${samples.join(", ")}`).toBeLessThan(2 * 1024 * 1024);
    test.info().annotations.push({
      type: "measured",
      description: `${(frames / (runMs / 1000)).toFixed(1)} frames/s; heap after GC ${(Math.min(...samples) / 1048576).toFixed(2)}..${(peak / 1048576).toFixed(2)} MiB; slowest answer ${slowestAnswerMs} ms`,
    });
  });
});
