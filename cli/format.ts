// Output formatting: saved-state documents, state diffs for traces, step events, stop lines.
import { GPR_NAMES } from "../contract/schema.ts";
import { bytesToHex, hex } from "../contract/hex.ts";
import { stateToJson, type ArchState, type Segment } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { EngineEvent } from "../contract/engine.ts";
import { describeFault, type StepEvent } from "../spec/index.ts";
import type { EngineExit } from "../conformance/vector-check.ts";

/** A `ringspec-state/1` document: reloadable with `ringspec run`. */
export function stateDocument(state: ArchState, profile: ProfileName): string {
  return JSON.stringify({ format: "ringspec-state/1", profile, ...stateToJson(state) }, null, 2) + "\n";
}

const FLAG_NAMES: readonly (readonly [string, bigint])[] = [
  ["CF", 1n << 0n], ["PF", 1n << 2n], ["AF", 1n << 4n], ["ZF", 1n << 6n], ["SF", 1n << 7n],
  ["TF", 1n << 8n], ["IF", 1n << 9n], ["DF", 1n << 10n], ["OF", 1n << 11n], ["IOPL0", 1n << 12n],
  ["IOPL1", 1n << 13n], ["NT", 1n << 14n], ["RF", 1n << 16n], ["VM", 1n << 17n], ["AC", 1n << 18n],
  ["VIF", 1n << 19n], ["VIP", 1n << 20n], ["ID", 1n << 21n],
];

function flagChanges(before: bigint, after: bigint): string {
  const parts: string[] = [];
  for (const [name, bit] of FLAG_NAMES) {
    if ((before & bit) === (after & bit)) continue;
    parts.push(((after & bit) !== 0n ? "+" : "-") + name);
  }
  return parts.join(" ");
}

const SEGMENTS = [
  ["cs", "cs"], ["ds", "ds"], ["es", "es"], ["fs", "fs"], ["gs", "gs"], ["ss", "ss"], ["tr", "tr"], ["ldt", "ldtr"],
] as const;
const SEGMENT_FIELDS = ["selector", "base", "limit", "type", "s", "dpl", "present", "db", "l", "g", "avl", "unusable"] as const;
const HEX_FIELDS: ReadonlySet<string> = new Set(["selector", "base", "limit"]);

function segmentChanges(name: string, a: Segment, b: Segment, out: string[]) {
  for (const field of SEGMENT_FIELDS) {
    if (a[field] === b[field]) continue;
    out.push(`${name}.${field}=${HEX_FIELDS.has(field) ? hex(b[field]) : String(b[field])}`);
  }
}

/** Longest memory change shown in full. */
const MAX_SHOWN_BYTES = 64;

/** Changed memory as aligned 8-byte words (a pushed value or a paging entry shows whole),
 *  adjacent words merged: `mem[0x1ffd8]=0000200000000000...` with the new bytes in address order. */
function memoryChanges(a: ReadonlyMap<number, Uint8Array>, b: ReadonlyMap<number, Uint8Array>, out: string[]) {
  const zero = new Uint8Array(4096);
  const numbers = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
  let runStart = -1n;
  let run: number[] = [];
  const flush = () => {
    if (run.length === 0) return;
    const shown = Uint8Array.from(run.slice(0, MAX_SHOWN_BYTES));
    const more = run.length > MAX_SHOWN_BYTES ? `…(${run.length} bytes)` : "";
    out.push(`mem[${hex(runStart)}]=${bytesToHex(shown)}${more}`);
    run = [];
  };
  for (const n of numbers) {
    const pa = a.get(n) ?? zero;
    const pb = b.get(n) ?? zero;
    if (pa === pb) continue;
    for (let word = 0; word < 4096; word += 8) {
      let changed = false;
      for (let i = word; i < word + 8; i++) if (pa[i] !== pb[i]) changed = true;
      if (!changed) continue;
      const address = BigInt(n) * 4096n + BigInt(word);
      if (run.length > 0 && address !== runStart + BigInt(run.length)) flush();
      if (run.length === 0) runStart = address;
      for (let i = word; i < word + 8; i++) run.push(pb[i]!);
    }
  }
  flush();
}

/**
 * What changed from `a` to `b`, as `name=value` items (the new value): registers, RFLAGS with the
 * flags that flipped, segment fields, descriptor tables, control registers, MSRs, run-time CPU
 * state and physical memory. `rip` is left out when it equals `sequentialRip`.
 */
export function diffStates(a: ArchState, b: ArchState, sequentialRip?: bigint): string[] {
  const out: string[] = [];
  GPR_NAMES.forEach((name, i) => {
    if (a.gpr[i] !== b.gpr[i]) out.push(`${name}=${hex(b.gpr[i]!)}`);
  });
  if (a.rip !== b.rip && b.rip !== sequentialRip) out.push(`rip=${hex(b.rip)}`);
  if (a.rflags !== b.rflags) out.push(`rflags=${hex(b.rflags)} (${flagChanges(a.rflags, b.rflags)})`);
  for (const [name, key] of SEGMENTS) segmentChanges(name, a[key], b[key], out);
  for (const [name, key] of [["gdt", "gdtr"], ["idt", "idtr"]] as const) {
    if (a[key].base !== b[key].base) out.push(`${name}.base=${hex(b[key].base)}`);
    if (a[key].limit !== b[key].limit) out.push(`${name}.limit=${hex(b[key].limit)}`);
  }
  for (const name of ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] as const) if (a[name] !== b[name]) out.push(`${name}=${hex(b[name])}`);
  for (const [name, key] of [["STAR", "star"], ["LSTAR", "lstar"], ["CSTAR", "cstar"], ["SFMASK", "fmask"], ["KERNEL_GS_BASE", "kernelGsBase"]] as const)
    if (a[key] !== b[key]) out.push(`${name}=${hex(b[key])}`);
  const ca = a.cpu;
  const cb = b.cpu;
  if (ca.pendingIrq !== cb.pendingIrq) out.push(`cpu.pending_irq=${cb.pendingIrq === null ? "null" : cb.pendingIrq}`);
  if (ca.pendingNmi !== cb.pendingNmi) out.push(`cpu.pending_nmi=${cb.pendingNmi}`);
  if (ca.nmiBlocked !== cb.nmiBlocked) out.push(`cpu.nmi_blocked=${cb.nmiBlocked}`);
  if (ca.shadow !== cb.shadow) out.push(`cpu.shadow=${cb.shadow}`);
  if (ca.halted !== cb.halted) out.push(`cpu.halted=${cb.halted}`);
  if (ca.shutdown !== cb.shutdown) out.push(`cpu.shutdown=${cb.shutdown}`);
  if (ca.pendingDebugTrap !== cb.pendingDebugTrap) out.push(`cpu.pending_debug_trap=${cb.pendingDebugTrap}`);
  memoryChanges(a.memory, b.memory, out);
  return out;
}

const SOURCE_NAMES = { exception: "exception", software: "software interrupt", external: "external interrupt", nmi: "NMI" } as const;

/** A short name for what a step did. */
export function describeEvent(event: StepEvent | EngineEvent): string {
  switch (event.kind) {
    case "retired":
      return "retired";
    case "delivered": {
      const code = event.errorCode === undefined ? "" : ` error code ${hex(event.errorCode)}`;
      return `delivered vector ${event.vector} (${SOURCE_NAMES[event.source]})${code}`;
    }
    case "halted":
      return "halted";
    case "shutdown":
      return "shutdown";
    case "io":
      return `${event.direction} port ${hex(event.port)} size ${event.size} value ${hex(event.value)}`;
    case "unsupported":
      return `unsupported: ${event.reason}`;
    case "fault":
      return `fault ${describeFault(event.fault)} (not delivered)`;
    case "memory-limit":
      return `memory limit: ${event.reason}`;
  }
}

/** `stop: hlt after 12 steps; at 0x11001: hlt`, with the engine's detail after the count. */
export function stopLine(exit: EngineExit, steps: number | undefined, at: string, detail: string | undefined): string {
  const count = steps === undefined ? "" : ` after ${steps} step${steps === 1 ? "" : "s"}`;
  return `stop: ${exit}${count}${detail === undefined ? "" : `: ${detail}`}; at ${at}`;
}
