// The dashboard's end-to-end specs: each starts its own `livegames serve` on a free
// loopback port (support/serve.ts) and drives the system's Chromium.
//
//   npm ci --prefix tests/e2e      # once (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1: no download)
//   npm test --prefix tests/e2e    # or, in tests/e2e: npx playwright test [spec] [--headed]
//
// The binary is $LIVEGAMES_BIN, else target/debug/livegames (`cargo build`); the
// browser is $CHROMIUM, else Debian's chromium. On failure the trace, a screenshot and
// the server's log are kept under target/e2e/results, the HTML report in
// target/e2e/report (`npm run report --prefix tests/e2e` opens it).
import { defineConfig } from "@playwright/test";
import * as path from "node:path";
import { chromiumPath } from "./support/tools";

const target = path.join(__dirname, "..", "..", "target", "e2e");

export default defineConfig({
  testDir: ".",
  testMatch: "*.spec.ts",
  outputDir: path.join(target, "results"),
  globalSetup: "./support/global-setup.ts",
  // A loaded 2-core machine runs the Rust tests beside these: generous waits, and one
  // worker unless asked for more (`--workers 2`). No retries: a flaky spec is a bug.
  workers: 1,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  reporter: [
    ["list"],
    ["html", { outputFolder: path.join(target, "report"), open: "never" }],
  ],
  use: {
    browserName: "chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: { executablePath: chromiumPath() ?? undefined },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    actionTimeout: 20_000,
    navigationTimeout: 30_000,
  },
});
