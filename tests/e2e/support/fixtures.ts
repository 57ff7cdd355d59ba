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
export async function screenshot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot();
  for (const dir of screenshotDirs()) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}.png`), png);
  }
}

/** The connection badge in the header: what the page says of its link to the server. */
export function connection(page: Page) {
  return page.getByRole("status", { name: "connection" });
}
