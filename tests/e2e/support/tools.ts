// Where the programs the specs run are: the livegames binary and Chromium.
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.join(__dirname, "..", "..", "..");

/** $CHROMIUM, or Debian's (or another distribution's) Chromium; null when none. */
export function chromiumPath(): string | null {
  const candidates = [
    process.env.CHROMIUM,
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
  ];
  return candidates.find((c) => c && fs.existsSync(c)) ?? null;
}

/** $LIVEGAMES_BIN, else the debug build `cargo build` makes. */
export function livegamesPath(): string {
  return process.env.LIVEGAMES_BIN || path.join(root, "target", "debug", "livegames");
}

/** Where pictures go: target/e2e/screenshots, and docs/screenshots when asked. */
export function screenshotDirs(): string[] {
  const dirs = [path.join(root, "target", "e2e", "screenshots")];
  if (process.env.LIVEGAMES_UPDATE_SCREENSHOTS === "1") dirs.push(path.join(root, "docs", "screenshots"));
  return dirs;
}

/** InfluxDB 1.x's daemon on PATH, or null. */
export function influxdPath(): string | null {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    const candidate = path.join(dir, "influxd");
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return null;
}

/** Sends `signal` to a running child and waits for it to exit, with SIGKILL after
 * `killAfterMs`; nothing for a child that already exited (or none). */
export async function stopProcess(child: ChildProcess | null, signal: NodeJS.Signals, killAfterMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  await exited;
  clearTimeout(timer);
}
