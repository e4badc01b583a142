// A campaign's worker thread. Plain JavaScript so that it starts under Node without a loader: it
// loads the TypeScript loop (worker.ts) as cli/bin.js loads the CLI (cli/launch.js).
import { launch } from "../../cli/launch.js";

await launch(new URL("./worker.ts", import.meta.url));
