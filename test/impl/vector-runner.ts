// Runs a conformance vector on ImplEngine and lists the fields that differ from `expected`.
import { readFileSync } from "node:fs";
import { parseDocument } from "../../contract/load.ts";
import { stateToJson } from "../../contract/state.ts";
import { hexToBytes } from "../../contract/hex.ts";
import type { VectorParsed } from "../../contract/schema.ts";
import { ImplEngine, type ImplEngineOptions } from "../../impl/engine.ts";

const NULL_SELECTOR_ONLY = new Set(["ds", "es", "fs", "gs", "ss"]);

export interface VectorResult {
  readonly name: string;
  readonly exit: string;
  readonly steps: number;
  readonly mismatches: string[];
}

/** Runs one vector file; `opts` selects engine options (e.g. interpretation only). */
export function runVectorFile(path: string, opts: ImplEngineOptions = {}): VectorResult {
  const doc = parseDocument(readFileSync(path, "utf8"));
  if (doc.kind !== "vector") throw new Error(`${path}: not a vector`);
  const engine = new ImplEngine(opts);
  engine.load(doc.state, doc.profile);
  const stop = engine.run(doc.vector.limits.max_steps);
  const mismatches = compare(doc.vector, stop.reason, engine);
  return { name: doc.vector.name, exit: stop.reason, steps: stop.steps, mismatches };
}

function compare(v: VectorParsed, exit: string, engine: ImplEngine): string[] {
  const out: string[] = [];
  const e = v.expected;
  if (e.exit !== exit) out.push(`exit: expected ${e.exit}, got ${exit}`);
  const state = engine.state();
  const got = stateToJson(state);
  const hex = (x: bigint) => "0x" + x.toString(16);
  const eq = (path: string, want: unknown, have: unknown) => {
    const w = typeof want === "bigint" ? hex(want) : String(want);
    const h = typeof have === "bigint" ? hex(have) : String(have);
    if (w !== h) out.push(`${path}: expected ${w}, got ${h}`);
  };
  for (const [k, val] of Object.entries(e.regs ?? {})) eq(`regs.${k}`, val, (got.regs as Record<string, unknown>)[k]);
  for (const [k, val] of Object.entries(e.sregs ?? {})) {
    const have = (got.sregs as Record<string, unknown>)[k];
    if (typeof val === "object" && val !== null) {
      const fields = Object.entries(val as Record<string, unknown>);
      const sel = (val as { selector?: bigint }).selector;
      const nullOnly = NULL_SELECTOR_ONLY.has(k) && sel !== undefined && (sel & 0xfffcn) === 0n;
      for (const [f, fv] of fields) {
        if (nullOnly && f !== "selector") continue;
        const hv = (have as Record<string, unknown>)[f];
        eq(`sregs.${k}.${f}`, fv, typeof fv === "bigint" ? BigInt(hv as string) : hv);
      }
    } else eq(`sregs.${k}`, val, BigInt(have as string));
  }
  for (const [k, val] of Object.entries(e.msrs ?? {})) {
    eq(`msrs.${k}`, val, BigInt((got.msrs as Record<string, string>)[k]!));
  }
  for (const region of e.memory ?? []) {
    const want = hexToBytes(region.bytes);
    for (let i = 0; i < want.length; i++) {
      const a = region.gpa + BigInt(i);
      const page = state.memory.get(Number(a >> 12n));
      const b = page === undefined ? 0 : page[Number(a & 0xfffn)]!;
      if (b !== want[i]) {
        out.push(`memory[${hex(a)}]: expected ${want[i]!.toString(16)}, got ${b.toString(16)}`);
        break;
      }
    }
  }
  return out;
}
