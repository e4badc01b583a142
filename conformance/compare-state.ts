// Field-by-field comparison of two architectural states (any two engines), for lockstep runs.
import { GPR_NAMES } from "../contract/schema.ts";
import { hex } from "../contract/hex.ts";
import { SEGMENT_NAMES, type ArchState, type Segment } from "../contract/state.ts";
import type { EngineEvent, PhysicalRange } from "../contract/engine.ts";

export interface FieldDifference {
  readonly field: string;
  readonly a: string;
  readonly b: string;
}

const SEGMENT_FIELDS = ["selector", "base", "limit", "type", "s", "dpl", "present", "db", "l", "g", "avl", "unusable"] as const;
const SCALARS = ["rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "star", "lstar", "cstar", "fmask", "kernelGsBase"] as const;
const CPU_FIELDS = ["pendingIrq", "pendingNmi", "nmiBlocked", "shadow", "halted", "shutdown", "pendingDebugTrap"] as const;

const show = (v: unknown): string => (typeof v === "bigint" ? hex(v) : String(v));

function byteAt(pages: ReadonlyMap<number, Uint8Array>, address: bigint): number {
  return pages.get(Number(address >> 12n))?.[Number(address & 0xfffn)] ?? 0;
}

/** Every register, segment, control, MSR and run-time field that differs; memory only within
 *  `ranges` (e.g. the union of what both engines touched). */
export function compareStates(a: ArchState, b: ArchState, ranges: readonly PhysicalRange[]): FieldDifference[] {
  const out: FieldDifference[] = [];
  const check = (field: string, x: unknown, y: unknown) => {
    if (x !== y) out.push({ field, a: show(x), b: show(y) });
  };
  GPR_NAMES.forEach((name, i) => check(name, a.gpr[i], b.gpr[i]));
  for (const f of SCALARS) check(f, a[f], b[f]);
  for (const s of SEGMENT_NAMES) for (const f of SEGMENT_FIELDS) check(`${s}.${f}`, (a[s] as Segment)[f], (b[s] as Segment)[f]);
  check("gdtr.base", a.gdtr.base, b.gdtr.base);
  check("gdtr.limit", a.gdtr.limit, b.gdtr.limit);
  check("idtr.base", a.idtr.base, b.idtr.base);
  check("idtr.limit", a.idtr.limit, b.idtr.limit);
  for (const f of CPU_FIELDS) check(`cpu.${f}`, a.cpu[f], b.cpu[f]);
  for (const range of ranges)
    for (let address = range.start; address < range.end; address++) {
      const x = byteAt(a.memory, address);
      const y = byteAt(b.memory, address);
      if (x !== y) {
        out.push({ field: `mem[${hex(address)}]`, a: hex(x), b: hex(y) });
        break; // one difference per range is enough to locate it
      }
    }
  return out;
}

/** The observable parts of a step's event, as one comparable line. */
export function describeEvent(e: EngineEvent): string {
  switch (e.kind) {
    case "delivered":
      return `delivered vector ${e.vector}${e.errorCode === undefined ? "" : ` error ${hex(e.errorCode)}`} (${e.source}) at ${hex(e.rip)}`;
    case "io":
      return `io ${e.direction} port ${hex(e.port)} size ${e.size} value ${hex(e.value)} at ${hex(e.rip)}`;
    case "unsupported":
      return `unsupported ${[...e.bytes].map((x) => x.toString(16).padStart(2, "0")).join(" ")} at ${hex(e.rip)}`;
    default:
      return `${e.kind} at ${hex(e.rip)}`;
  }
}

/** Union of two sorted range lists, merged. */
export function unionRanges(x: readonly PhysicalRange[], y: readonly PhysicalRange[]): PhysicalRange[] {
  const all = [...x, ...y].sort((p, q) => (p.start < q.start ? -1 : p.start > q.start ? 1 : 0));
  const out: PhysicalRange[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end) out[out.length - 1] = { start: last.start, end: r.end > last.end ? r.end : last.end };
    else out.push(r);
  }
  return out;
}
