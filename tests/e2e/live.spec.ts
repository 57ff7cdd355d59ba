// #/live: the list of games as a fan reads it, what an ESPN outage looks like there
// and on a game's page, and an unknown game.
import type { Page } from "@playwright/test";
import { test, expect, screenshot } from "./support/fixtures";
import type { Game } from "./support/serve";

/** A game's row in the list: the one whose link names its teams ("MIL @ BOS"). */
function gameRow(page: Page, game: Game) {
  const teams = `${game.away.abbreviation} @ ${game.home.abbreviation}`;
  return page
    .getByRole("table", { name: "Live games" })
    .getByRole("row")
    .filter({ has: page.getByRole("link", { name: teams, exact: true }) });
}

/** A period and clock as a fan reads them: "Q2 5:32", "OT 1:05", "2OT 0:40", "End of Q2". */
const FAN_CLOCK = /^(?:(?:Q[1-4]|OT|\d+OT) \S+|End of (?:Q[1-4]|OT|\d+OT))$/;

test("lists every game with its score, a fan's clock, and who won a finished one", async ({ page, serve }) => {
  const id = await serve.liveGame();
  await page.goto(serve.url + "/#/live");
  const games = page.getByRole("table", { name: "Live games" });
  const { games: listed } = await serve.json<{ games: Game[] }>("/api/live/games");
  // One row per game (and the header row).
  await expect(games.getByRole("row")).toHaveCount(listed.length + 1);
  await expect(page.getByText(/\d+ of \d+ games live/)).toBeVisible();

  const game = listed.find((g) => g.id === id)!;
  const row = gameRow(page, game);
  await expect(row).toContainText("live");
  await expect(row).toContainText("%");
  await expect(row).toContainText(`${game.away.name} at ${game.home.name}`);
  // The clock column: ESPN's "P2 0.0" is never shown as is.
  await expect(row.getByRole("cell").nth(2)).toHaveText(FAN_CLOCK);

  // A finished game says "Final" and who won, not a dash. The replay staggers its
  // games, so one has nearly always finished; when the API lists one, the page shows it.
  const finals = games.getByRole("row").filter({ has: page.getByRole("cell", { name: "Final", exact: true }) });
  if (listed.some((g) => g.latest?.state === "final")) await expect(finals).not.toHaveCount(0);
  for (const final of await finals.all()) {
    await expect(final.getByRole("cell").nth(4)).toHaveText(/ (won|lost)$|^tied$/);
  }
  // A game not started yet shows its state and no clock.
  const scheduled = games.getByRole("row").filter({ has: page.getByRole("cell", { name: "scheduled", exact: true }) });
  if (listed.some((g) => g.latest?.state === "scheduled")) await expect(scheduled).not.toHaveCount(0);
  for (const upcoming of await scheduled.all()) await expect(upcoming.getByRole("cell").nth(2)).toHaveText("");
  await expect(page.getByRole("status", { name: "connection" })).toHaveText(/^updated \d\d:\d\d:\d\d$/);
  await screenshot(page, "live-list");
});

test("an ESPN outage says how old the score is, in the list and on the game's page", async ({ page, serve }) => {
  const id = await serve.liveGame();
  const { games: listed } = await serve.json<{ games: Game[] }>("/api/live/games");
  const game = listed.find((g) => g.id === id)!;
  await page.goto(`${serve.url}/#/live/${id}`);
  await expect(page.getByRole("status", { name: "connection" })).toHaveText("live");
  const stale = page.getByText(/^ESPN is down: the score, clock and win probability are from/);
  await expect(stale).toHaveCount(0);

  await serve.fault("espn", "down");
  await expect(stale).toBeVisible();
  await expect(stale).toHaveText(/ from \d\d:\d\d:\d\d, \d+ (s|min)[^.]* ago\.$/);
  // The last known score stays on screen, with what ESPN last said and when.
  await expect(page.locator("#scoreline")).toHaveText(/\d+ – \d+/);
  await expect(page.getByText(/espn down, last heard \d+ (s|min)/)).toBeVisible();
  await screenshot(page, "live-game-espn-down");

  await page.getByRole("link", { name: "← All games" }).click();
  const sources = gameRow(page, game).getByRole("cell").last();
  await expect(sources).toHaveText(/^espn down, last heard \d+ (s|min).* ago · kalshi ok$/);

  await serve.fault("espn", null);
  await expect(sources).toHaveText("espn ok · kalshi ok");
  await page.goto(`${serve.url}/#/live/${id}`);
  await expect(page.getByText(/espn ok · kalshi ok/)).toBeVisible();
  await expect(stale).toHaveCount(0);
});

test("an unknown game says so and links back to the list", async ({ page, serve }) => {
  await page.goto(`${serve.url}/#/live/no-such-game`);
  await expect(page.getByRole("heading", { name: "No game “no-such-game” on this server." })).toBeVisible();
  await expect(page.getByRole("status", { name: "connection" })).toHaveText("no stream");
  await page.getByRole("link", { name: "← Back to the live games" }).click();
  await expect(page).toHaveURL(/#\/live$/);
  await expect(page.getByRole("table", { name: "Live games" }).getByRole("row")).not.toHaveCount(0);
  await expect(page.getByRole("link", { name: / @ / }).first()).toBeVisible();
});
