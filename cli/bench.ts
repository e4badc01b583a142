// `ringspec bench`: hands over to the benchmarks in bench/index.ts, which export
// `main(argv: string[]): number | Promise<number>` (the same contract as this CLI's main).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Io } from "./io.ts";

export const BENCH_HELP = `Usage: ringspec bench [options]

Runs the benchmarks in bench/index.ts and passes the options on to them (for example --json).
Exit status: the benchmarks'; 2 when bench/index.ts is missing or does not export main.`;

const BENCH_ENTRY = new URL("../bench/index.ts", import.meta.url);

interface BenchModule {
  readonly main?: unknown;
}

export async function benchCommand(argv: readonly string[], io: Io): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h") {
    io.out(BENCH_HELP + "\n");
    return 0;
  }
  if (!existsSync(BENCH_ENTRY)) {
    io.err(`ringspec: bench: no benchmarks yet (${fileURLToPath(BENCH_ENTRY)} is missing)`);
    return 2;
  }
  const module = (await import(BENCH_ENTRY.href)) as BenchModule;
  if (typeof module.main !== "function") {
    io.err(`ringspec: bench: bench/index.ts does not export a main(argv) function`);
    return 2;
  }
  const code: unknown = await (module.main as (argv: string[]) => unknown)([...argv]);
  return typeof code === "number" && Number.isInteger(code) ? code : 0;
}
