// A real InfluxDB 1.x (Debian's `influxdb`) on loopback ports, its data in a temporary
// folder: started, stopped and started again by a spec.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { waitFor } from "./serve";
import { stopProcess } from "./tools";

/** A loopback port free now (bound, then let go), for influxd to listen on. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export class InfluxDb {
  private child: ChildProcess | null = null;

  private constructor(private binary: string, private dir: string, readonly httpPort: number) {}

  static async start(binary: string): Promise<InfluxDb> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "livegames-e2e-influxdb-"));
    const [http, rpc] = [await freePort(), await freePort()];
    fs.writeFileSync(
      path.join(dir, "influxdb.conf"),
      [
        "reporting-disabled = true",
        `bind-address = "127.0.0.1:${rpc}"`,
        `[meta]\n  dir = "${dir}/meta"`,
        `[data]\n  dir = "${dir}/data"\n  wal-dir = "${dir}/wal"\n  query-log-enabled = false`,
        `[http]\n  bind-address = "127.0.0.1:${http}"\n  log-enabled = false`,
        "[monitor]\n  store-enabled = false",
        "[continuous_queries]\n  enabled = false",
      ].join("\n") + "\n",
    );
    const db = new InfluxDb(binary, dir, http);
    await db.resume();
    return db;
  }

  url(database: string): string {
    return `http://127.0.0.1:${this.httpPort}/${database}`;
  }

  /** Starts (again) on the same ports and data, once it answers /ping. */
  async resume(): Promise<void> {
    const log = fs.openSync(path.join(this.dir, "influxd.log"), "a");
    this.child = spawn(this.binary, ["-config", path.join(this.dir, "influxdb.conf")], { stdio: ["ignore", "ignore", log] });
    fs.closeSync(log);
    await waitFor("influxd to answer /ping", async () => {
      const res = await fetch(`http://127.0.0.1:${this.httpPort}/ping`, { signal: AbortSignal.timeout(2000) });
      return res.status === 204 ? true : null;
    });
  }

  /** Stops the process; its data stays for `resume`. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    // Killed outright: the ops page is to see InfluxDB gone, not shutting down.
    await stopProcess(child, "SIGKILL", 0);
  }

  async remove(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
