// #/ops: each group shows what a known sequence did (driven through the API and the
// admin API, with a real InfluxDB stopped and started), and the alerts of
// deploy/prometheus/alerts.yml go pending with the figures that trip them.
import type { Page } from "@playwright/test";
import { test as base, expect, screenshot } from "./support/fixtures";
import { InfluxDb } from "./support/influxdb";
import type { Serve } from "./support/serve";
import { influxdPath } from "./support/tools";

const influxd = influxdPath();
const test = base.extend<{ influx: InfluxDb }>({
  influx: async ({}, use) => {
    const db = await InfluxDb.start(influxd!);
    try {
      await use(db);
    } finally {
      await db.remove();
    }
  },
  serveArgs: async ({ influx }, use) => {
    await use([
      "--influxdb", influx.url("ops"), "--influxdb-flush", "100ms", "--ops-every", "200ms",
      "--apisports-daily-quota", "6", "--apisports-breaker-failures", "1", "--apisports-breaker-open-for", "1s",
    ]);
  },
});

if (!influxd && process.env.LIVEGAMES_REQUIRE_TOOLS === "1") {
  throw new Error("influxd is required (LIVEGAMES_REQUIRE_TOOLS=1) but not installed: apt-get install influxdb");
}
test.skip(!influxd, "needs InfluxDB 1.x's influxd: apt-get install influxdb");

/** A figure's value as shown, in its group ("Scores cache", "Hits"). */
const figure = (page: Page, group: string, label: string) =>
  page.getByRole("region", { name: group }).getByRole("group", { name: label, exact: true }).locator(".value");
const alert = (page: Page, name: string) => page.getByRole("table", { name: "Alerts" }).getByRole("row").filter({ hasText: name });

async function scores(serve: Serve): Promise<number> {
  return (await serve.get("/api/nfl/scores")).status;
}

test("each group shows what a known sequence did, and the alerts follow", async ({ page, serve, influx }) => {
  test.setTimeout(120_000);
  await page.goto(serve.url + "/?opsEvery=300#/ops");
  await expect(page.getByRole("heading", { name: /^Alerts/ })).toBeVisible();
  // Not measured yet is a dash, never 0.
  await expect(figure(page, "Scores cache", "Hit ratio")).toHaveText("–");
  await expect(alert(page, "DeliveryP99AboveBudget")).toContainText("no data");

  // Cache: a miss, then two hits.
  for (let i = 0; i < 3; i++) expect(await scores(serve)).toBe(200);
  await expect(figure(page, "Scores cache", "Misses")).toHaveText("1");
  await expect(figure(page, "Scores cache", "Hits")).toHaveText("2");
  await expect(figure(page, "Scores cache", "Hit ratio")).toHaveText("66.7%");

  // Circuit: API-SPORTS down opens it on the first failure; back up, a probe closes it.
  await serve.fault("apisports", "down");
  await serve.admin("DELETE", "/admin/scores/cache");
  expect(await scores(serve)).not.toBe(200);
  await expect(figure(page, "Circuit breakers", "NFL circuit")).toHaveText("open");
  await expect(figure(page, "Circuit breakers", "NFL times opened")).toHaveText("1");
  await expect(figure(page, "Circuit breakers", "NFL failures in a row")).toHaveText("1");
  await expect(alert(page, "CircuitBreakerOpen")).toContainText("pending");
  await expect(figure(page, "Scores cache", "Evictions")).toHaveText("1");
  await serve.fault("apisports", null);
  await expect.poll(() => scores(serve), { message: "the probe closing the circuit", intervals: [200] }).toBe(200);
  await expect(figure(page, "Circuit breakers", "NFL circuit")).toHaveText("closed");
  // The open spell lasted at least --apisports-breaker-open-for (1 s).
  await expect(figure(page, "Circuit breakers", "NFL last recovery")).toHaveText(/^(\d\.\d|\d+) s$/);
  const recovery = parseFloat((await figure(page, "Circuit breakers", "NFL last recovery").textContent())!);
  expect(recovery).toBeGreaterThanOrEqual(1);

  // Quota: the day's 6 spent by fresh fetches; the next is a rate-limit hit.
  let refused = 0;
  for (let i = 0; i < 8; i++) {
    await serve.admin("DELETE", "/admin/scores/cache");
    if ((await scores(serve)) === 503) refused++;
  }
  expect(refused).toBeGreaterThanOrEqual(1);
  await expect(figure(page, "API usage", "Quota left today")).toHaveText("0");
  await expect(figure(page, "API usage", "Requests today")).toHaveText("6");
  await expect(figure(page, "API usage", "Rate-limit hits")).not.toHaveText(/^(0|–)$/);
  await expect(alert(page, "ApiSportsQuotaHigh")).toContainText("pending");

  // InfluxDB: stopped, writes fail and the alert goes pending; back, the queue drains.
  await expect(figure(page, "InfluxDB writes", "Write success")).toHaveText("100%");
  await influx.stop();
  await expect(figure(page, "InfluxDB writes", "Write success")).not.toHaveText(/^(100%|–)$/);
  await expect(alert(page, "InfluxDBWriteFailures")).toContainText("pending");
  await influx.resume();
  // The stream goes on writing (a flush every 100 ms), so a sample of the queue holds
  // up to a flush's worth of lines once the backlog is gone: drained is under 30.
  await expect.poll(async () => Number(await figure(page, "InfluxDB writes", "Queued lines").textContent()), { timeout: 60_000 }).toBeLessThan(30);
  await expect(figure(page, "InfluxDB writes", "Write latency p99")).toHaveText(/^\d+(\.\d)? (ms|s)$/);

  // Every figure says what it means on hover.
  for (const f of await page.getByRole("group").all()) await expect(f).toHaveAttribute("title", /\S/);
  // Charts on the game chart's time ticks.
  const ticks = await page.locator('canvas[data-series="requests"]').evaluate((c: any) => c.__axes.x.ticks.length);
  expect(ticks).toBeGreaterThanOrEqual(2);
  await screenshot(page, "ops", { fullPage: true });
});
