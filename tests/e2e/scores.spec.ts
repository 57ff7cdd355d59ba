// #/scores: NFL and NHL as the API has them, with the cache state (MISS when fetched,
// then HIT with its age); loading; and each reason the server gives for having none,
// with its Retry-After.
import type { Page } from "@playwright/test";
import { test, expect, screenshot } from "./support/fixtures";

interface Scores {
  games: { id: number; status_detail: string; home: { name: string }; away: { name: string } }[];
}

const league = (page: Page, name: "NFL" | "NHL") => page.getByRole("region", { name: `${name} scores` });

/** Records every text the two cache badges show, from the page's first script on: a
 * refresh a second can turn MISS into HIT between two looks. */
async function recordBadges(page: Page) {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as any).__badges = seen;
    new MutationObserver(() => {
      for (const b of document.querySelectorAll(".badge.cache")) {
        const text = b.id + ": " + b.textContent;
        if (seen[seen.length - 1] !== text && !seen.includes(text)) seen.push(text);
      }
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  return () => page.evaluate(() => (window as any).__badges as string[]);
}

test("NFL and NHL rows are the API's, fetched (MISS) then cached (HIT) with their age", async ({ page, serve }) => {
  const badges = await recordBadges(page);
  await page.goto(serve.url + "/?scoresEvery=1000#/scores");
  for (const name of ["NFL", "NHL"] as const) {
    const table = league(page, name).getByRole("table", { name: `${name} scores` });
    await expect(table).toBeVisible();
    const api = await serve.json<Scores>(`/api/${name.toLowerCase()}/scores`);
    const rows = table.getByRole("row").filter({ has: page.getByRole("cell") });
    await expect(rows).toHaveCount(api.games.length);
    for (const [i, game] of api.games.entries()) {
      await expect(rows.nth(i)).toContainText(`${game.away.name} @ ${game.home.name}`);
      await expect(rows.nth(i)).toContainText(game.status_detail);
    }
  }
  const nfl = league(page, "NFL");
  await expect(nfl.getByText(/^HIT · cached \d+ s ago$/)).toBeVisible();
  expect(await badges()).toContain("cache-nfl: MISS · fetched just now");
  await screenshot(page, "scores");
});

test.describe("a slow API-SPORTS", () => {
  // Every fetch waits out the 2.5 s upstream timeout (the mock's slow delay is 3 s) and
  // fails; the first failure opens the circuit.
  test.use({ serveArgs: ["--fault", "apisports=slow", "--upstream-timeout", "2500ms", "--apisports-breaker-failures", "1"] });

  test("shows loading, then the open circuit with when to retry", async ({ page, serve }) => {
    await page.goto(serve.url + "/?scoresEvery=1000#/scores");
    await expect(league(page, "NFL").getByText("Loading NFL scores…")).toBeVisible();
    const reason = league(page, "NFL").getByText(/^Scores unavailable \(circuit_open\): /);
    await expect(reason).toHaveText(/: .+\. Retry in \d+ s\.$/);
    await expect(league(page, "NFL").getByRole("heading")).toHaveText("NFL circuit_open");
    await expect(page.getByRole("status", { name: "connection" })).toHaveText(/unavailable$/);
    await screenshot(page, "scores-circuit-open");
  });
});

test.describe("a real API-SPORTS without a key", () => {
  // Never reached: without a key the server does not ask.
  test.use({ serveArgs: ["--apisports-url", "http://127.0.0.1:9/{sport}"] });

  test("says there is no key and which variable sets it", async ({ page, serve }) => {
    await page.goto(serve.url + "/?scoresEvery=1000#/scores");
    const reason = league(page, "NHL").getByText(/^Scores unavailable \(no_api_key\): /);
    await expect(reason).toContainText("APISPORTS_KEY");
    await expect(reason).not.toContainText("Retry in");
  });
});

for (const [flag, code] of [["--apisports-daily-quota", "quota_exhausted"], ["--apisports-minute-quota", "rate_limited"]]) {
  test.describe(`a quota of one request (${flag})`, () => {
    test.use({ serveArgs: [flag, "1"] });

    test(`one league is shown, the other says ${code} and when to retry`, async ({ page, serve }) => {
      await page.goto(serve.url + "/?scoresEvery=1000#/scores");
      // The two leagues are fetched together: whichever came second found the quota spent.
      const refused = page.getByRole("region").filter({ hasText: `Scores unavailable (${code})` });
      await expect(refused).toHaveCount(1);
      await expect(refused.getByText(new RegExp(`^Scores unavailable \\(${code}\\): .+\\. Retry in \\d+ s\\.$`))).toBeVisible();
      await expect(page.getByRole("table", { name: /scores$/ })).toHaveCount(1);
    });
  });
}
