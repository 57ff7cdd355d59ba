// The specs' `test`: Playwright's, with a `serve` of the spec's own (a fresh
// `livegames serve` on a free port per test; its flags from `test.use({ serveArgs })`),
// whose log is attached when the test fails.
import { test as base, expect, type Page } from "@playwright/test";
import * as fs from "node:fs";
import * as path from "node:path";
import { Serve } from "./serve";
import { screenshotDirs } from "./tools";

export { expect };

export const test = base.extend<{ serveArgs: string[]; serve: Serve }>({
  serveArgs: [[], { option: true }],
  serve: async ({ serveArgs }, use, testInfo) => {
    const serve = await Serve.start(serveArgs);
    try {
      await use(serve);
    } finally {
      await serve.stop();
      if (testInfo.status !== testInfo.expectedStatus) {
        await testInfo.attach("serve.log", { body: serve.logText(), contentType: "text/plain" });
      }
    }
  },
});

/** A picture of the page for the README: target/e2e/screenshots/NAME.png, and
 * docs/screenshots with LIVEGAMES_UPDATE_SCREENSHOTS=1. */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  const png = await page.screenshot(options);
  for (const dir of screenshotDirs()) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}.png`), png);
  }
}
