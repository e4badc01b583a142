// Run by `npm ci` / `npm install` (package.json "prepare", after tsc): compiles the command's entry
// points — the CLI, `serve` (one per engine process of a campaign) and a campaign's worker thread —
// into the cached copy cli/launch.js keeps under node_modules/.cache/ringspec/, which their first
// start would otherwise build (1–2 s each, and a campaign's worker threads each built their own).
// The copy stays keyed on its sources (their content): an edited source compiles again at the next
// start. A failure here only warns: the first start then compiles.
import { compileAhead, errorLine } from "./launch.js";

try {
  await compileAhead([
    new URL("./main.ts", import.meta.url),
    new URL("./serve-main.ts", import.meta.url),
    new URL("../conformance/campaign/worker.ts", import.meta.url),
  ]);
} catch (error) {
  console.warn(`ringspec: the command was not compiled ahead (${errorLine(error)}); it compiles at its first start`);
}
