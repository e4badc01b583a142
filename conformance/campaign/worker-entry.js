// A campaign's worker thread. Plain JavaScript so that it starts under Node without a loader:
// it registers tsx (as cli/bin.js does) and runs the TypeScript loop (worker.ts).
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
