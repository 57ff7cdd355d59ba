// `livegames serve` as a child process on a loopback port, for one spec: started with
// fast upstream timings, its JSON log kept (attached to a failing spec), driven
// through its admin API, stopped with SIGTERM (and restarted on the same port).
import { spawn, type ChildProcess } from "node:child_process";
import * as readline from "node:readline";
import { livegamesPath, stopProcess } from "./tools";

/** The admin API's bearer token in every spec's server. */
export const ADMIN_TOKEN = "e2e-admin";

/** Replays a game in about two minutes, with upstream timings short enough that an
 * outage shows within a second (as the Rust tests' `fast_config`). */
export const FAST_ARGS = [
  "--speed", "60", "--rate", "20", "--espn-poll", "100ms", "--stale-after", "400ms",
  "--down-after", "800ms", "--retry-max", "200ms", "--upstream-timeout", "1500ms",
  "--heartbeat", "1s", "--shutdown-grace", "5s", "--admin-token", ADMIN_TOKEN,
];

const LOG_LINES_KEPT = 2000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** `base` with each flag `extra` names taken out (with its value), then `extra`: a
 * spec's flags override the defaults (clap refuses a flag given twice). */
export function withArgs(base: string[], extra: string[]): string[] {
  const overridden = new Set(extra.filter((a) => a.startsWith("--")));
  const kept: string[] = [];
  for (let i = 0; i < base.length; i++) {
    if (overridden.has(base[i])) {
      if (base[i + 1] !== undefined && !base[i + 1].startsWith("--")) i++;
      continue;
    }
    kept.push(base[i]);
  }
  return [...kept, ...extra];
}

/** The environment without serve's own settings (LIVEGAMES_*, a real API-SPORTS or
 * Kalshi key): a spec's server is what its flags say, whatever the shell exports. */
function ownEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("LIVEGAMES_") || name.startsWith("KALSHI_") || name === "APISPORTS_KEY") delete env[name];
  }
  env.RUST_LOG = "info";
  return env;
}

export class Serve {
  private child: ChildProcess | null = null;
  private log: string[] = [];
  /** http://127.0.0.1:PORT */
  url = "";
  /** 127.0.0.1:PORT */
  addr = "";

  private constructor(private args: string[]) {}

  /** Starts a server with FAST_ARGS and `args` on a free port. */
  static async start(args: string[] = []): Promise<Serve> {
    const serve = new Serve(withArgs(FAST_ARGS, args));
    await serve.spawn("127.0.0.1:0");
    return serve;
  }

  private async spawn(addr: string): Promise<void> {
    const child = spawn(livegamesPath(), ["serve", "--addr", addr, "--log-format", "json", ...this.args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: ownEnv(),
    });
    this.child = child;
    const lines = readline.createInterface({ input: child.stderr! });
    const listening = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not say where it listens within ${START_TIMEOUT_MS} ms:\n${this.logText()}`)), START_TIMEOUT_MS);
      lines.on("line", (line) => {
        this.log.push(line);
        if (this.log.length > LOG_LINES_KEPT) this.log.shift();
        const at = /"local_addr":"([0-9.]+:[0-9]+)"/.exec(line);
        if (at) { clearTimeout(timer); resolve(at[1]); }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`serve exited (${code ?? signal}) before listening:\n${this.logText()}`));
      });
      child.once("error", (e) => { clearTimeout(timer); reject(e); });
    });
    this.addr = await listening;
    this.url = `http://${this.addr}`;
  }

  /** SIGTERM, then the process's exit (SIGKILL past the timeout). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    await stopProcess(child, "SIGTERM", STOP_TIMEOUT_MS);
  }

  /** Stops this server and starts a new run on the same port, with `args` added. */
  async restart(args: string[] = []): Promise<void> {
    const addr = this.addr;
    await this.stop();
    this.args = withArgs(this.args, args);
    await this.spawn(addr);
  }

  logText(): string {
    return this.log.join("\n");
  }

  async get(path: string): Promise<Response> {
    return fetch(this.url + path, { signal: AbortSignal.timeout(10_000) });
  }

  async json<T = any>(path: string): Promise<T> {
    const res = await this.get(path);
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  /** An admin API call; anything but 2xx fails the spec. */
  async admin(method: "POST" | "DELETE", path: string, body?: unknown): Promise<void> {
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  }

  /** Takes `source` down (`mode` "down") through the admin API, or clears it. */
  async fault(source: string, mode: string | null): Promise<void> {
    if (mode) await this.admin("POST", "/admin/faults", { source, mode });
    else await this.admin("DELETE", `/admin/faults?source=${source}`);
  }

  /** The sum of a Prometheus metric's samples whose line starts with `name`. */
  async metric(name: string): Promise<number> {
    const text = await (await this.get("/metrics")).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(name) && !l.startsWith("#"))
      .map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)))
      .filter((v) => !Number.isNaN(v))
      .reduce((a, b) => a + b, 0);
  }

  /** The id of a live game with a market, once the server has one. */
  async liveGame(): Promise<string> {
    return waitFor("a live game with a market", async () => {
      const list = await this.json<{ games: Game[] }>("/api/live/games");
      return list.games.find((g) => g.latest?.state === "live" && g.latest?.market != null)?.id ?? null;
    });
  }

  /** The seqs of a game's timeline from `from` on. */
  async timelineSeqs(id: string, from: number): Promise<number[]> {
    const timeline = await this.json<{ points: { seq: number }[] }>(
      `/api/games/${encodeURIComponent(id)}/timeline?since=${Math.max(0, from - 1)}`,
    );
    return timeline.points.map((p) => p.seq);
  }
}

export interface Game {
  id: string;
  seq: number;
  league: string;
  home: { abbreviation: string; name: string };
  away: { abbreviation: string; name: string };
  latest: { state?: string; market?: unknown; sources?: Record<string, string> } | null;
}

/** Polls `check` until it gives a value (not null), or fails naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== null && value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
