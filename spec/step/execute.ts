// Per-instruction dispatch: one lookup by mnemonic into the tables the instruction families export.
// (A plain table lookup, not a pattern-matching library: this runs once per instruction.)
import type { Executor, ExecutorTable } from "./executor.ts";
import type { Mnemonic } from "../decode/instruction.ts";

const tables: ExecutorTable[] = [];

/** Each family registers its table once, at module load (see spec/index.ts). */
export function registerExecutors(table: ExecutorTable): void {
  tables.push(table);
}

let merged: Map<Mnemonic, Executor> | null = null;

export function executorFor(mnemonic: Mnemonic): Executor | undefined {
  if (merged === null) {
    merged = new Map();
    for (const table of tables)
      for (const [name, fn] of Object.entries(table) as [Mnemonic, Executor][]) {
        if (merged.has(name)) throw new Error(`two executors for ${name}`);
        merged.set(name, fn);
      }
  }
  return merged.get(mnemonic);
}
