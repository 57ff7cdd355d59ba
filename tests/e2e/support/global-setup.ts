// Before any spec: the two programs every spec needs are there, or the run stops
// saying how to get them (rather than every spec failing on its own).
import * as fs from "node:fs";
import { chromiumPath, livegamesPath } from "./tools";

export default function globalSetup(): void {
  const missing: string[] = [];
  if (!chromiumPath()) missing.push("Chromium: apt-get install chromium, or set CHROMIUM=/path/to/chrome");
  if (!fs.existsSync(livegamesPath())) missing.push(`the livegames binary at ${livegamesPath()}: run \`cargo build\`, or set LIVEGAMES_BIN`);
  if (missing.length) throw new Error("the end-to-end specs need " + missing.join("; and "));
}
