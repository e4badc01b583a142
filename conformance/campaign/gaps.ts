// Known gaps: named conditions on a divergence that a campaign may expect (`--expect-deviation
// NAME`, or `{"gap": NAME}` in an expectations file) when a difference is known to come from
// something the reference does not model yet, rather than from one rule. Each says what it
// covers; reports list how often it was seen. They are never applied unless named.
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent } from "../../contract/engine.ts";
import type { FieldDifference } from "../../contract/compare.ts";
import { decode } from "../../spec/decode/decode.ts";
import { undefinedFlags } from "../../spec/instructions/undefined-flags.ts";
import { translate } from "../../guest/paging.ts";

export interface GapContext {
  readonly before: ArchState;
  readonly stateA: ArchState;
  readonly stateB: ArchState;
  readonly eventA: EngineEvent | undefined;
  readonly eventB: EngineEvent | undefined;
  readonly differences: readonly FieldDifference[];
}

export interface Gap {
  readonly name: string;
  readonly description: string;
  readonly applies: (c: GapContext) => boolean;
}

// compat-segmentation (spec/ without segmentation in compatibility mode) is gone: spec/ models it
// since issue 9, and the two engines agree there.
export const GAPS: readonly Gap[] = [
  {
    name: "shutdown-state",
    description:
      "what a CPU that shuts down leaves, which the SDM does not define: spec/ keeps nothing of the delivery that escalated (the machine stays at the faulting instruction); an emulator may keep the frame slots it wrote before the last fault, and Bochs has set RFLAGS.RF; a divergence only in RF and memory, both engines shut down",
    applies: (c) =>
      c.stateA.cpu.shutdown && c.stateB.cpu.shutdown && c.differences.length > 0 &&
      c.differences.every((d) => d.field.startsWith("memory@") || (d.field === "regs.rflags" && (c.stateA.rflags ^ c.stateB.rflags) === 0x10000n)),
  },
  {
    name: "port-devices",
    description:
      "what IN reads: spec/ has nothing on the bus (all ones, docs/model-choices.md), a PC emulator's platform devices (DMA, PIC, PIT, CMOS, ...) answer at their ports; a divergence only in RAX at an IN instruction",
    applies: (c) => c.differences.length > 0 && c.differences.every((d) => d.field === "regs.rax") && mnemonicAt(c.before) === "in",
  },
  {
    name: "access-order",
    description:
      "which access of an instruction faults first when several would (IRET's frame slots): the SDM does not order them; spec/ reads in the pseudo-code's order, an emulator may read another slot first; a divergence only in CR2, both addresses on the same page within 64 bytes",
    applies: (c) =>
      c.differences.length > 0 && c.differences.every((d) => d.field === "sregs.cr2") && c.stateA.cr2 >> 12n === c.stateB.cr2 >> 12n &&
      (c.stateA.cr2 > c.stateB.cr2 ? c.stateA.cr2 - c.stateB.cr2 : c.stateB.cr2 - c.stateA.cr2) < 64n,
  },
  {
    name: "undefined-flags",
    description:
      "status flags the SDM leaves undefined for the instruction (multi-bit shifts and rotates, MUL, DIV, BT, ...): spec/ produces one documented value (spec/instructions/undefined-flags.ts), an emulator may produce another; a divergence only in those bits of RFLAGS",
    applies: (c) => c.differences.length > 0 && c.differences.every((d) => d.field === "regs.rflags") && ((c.stateA.rflags ^ c.stateB.rflags) & ~undefinedFlagsAt(c.before)) === 0n,
  },
  {
    name: "faulting-walk-accessed",
    description:
      "the accessed flags of a page walk that faults: spec/ sets none (docs/model-choices.md), an emulator may set A in the entries it read before the fault (SDM Vol. 3A §4.8 sets A in entries \"used as part of linear-address translation\", and a walk that faults yields no translation); a divergence only in bit 5 of paging-structure entries engine B set",
    applies: (c) => c.differences.length > 0 && onlyAccessedBitsSet(c),
  },
  {
    name: "devices",
    description:
      "the devices of docs/devices.md (exit port 0xF4, debug console, timer) are moving into the engines: a divergence only in the devices.* fields of the state, where one engine models a device and the other does not yet",
    applies: (c) => c.differences.length > 0 && c.differences.every((d) => d.field.startsWith("devices.")),
  },
  {
    name: "b-unmodelled",
    description:
      "engine B stops `unsupported` at an instruction engine A models (e.g. an external engine that implements less than spec/): a divergence at a step where B's event is `unsupported` and A's is not",
    applies: (c) => c.eventB?.kind === "unsupported" && c.eventA !== undefined && c.eventA.kind !== "unsupported",
  },
];

export function gapByName(name: string): Gap | undefined {
  return GAPS.find((g) => g.name === name);
}

/** Every memory difference is bit 5 (A) of byte 0 of an 8-byte entry in a paging-structure page
 *  reachable from CR3 before the step, set by engine B and clear in engine A. */
function onlyAccessedBitsSet(c: GapContext): boolean {
  const tables = pagingStructurePages(c.before);
  for (const d of c.differences) {
    const m = /^memory@(0x[0-9a-f]+)$/.exec(d.field);
    if (m === null || typeof d.a !== "string" || typeof d.b !== "string" || d.a.length !== d.b.length) return false;
    const address = Number(m[1]);
    for (let i = 0; i < d.a.length / 2; i++) {
      const a = parseInt(d.a.slice(2 * i, 2 * i + 2), 16);
      const b = parseInt(d.b.slice(2 * i, 2 * i + 2), 16);
      if (a === b) continue;
      const at = address + i;
      if ((a ^ b) !== 0x20 || (b & 0x20) === 0 || at % 8 !== 0 || !tables.has(Math.floor(at / 4096))) return false;
    }
  }
  return true;
}

/** The page numbers of the PML4, PDPTs, PDs and PTs reachable from CR3 (bounded by the pages the
 *  state holds). */
function pagingStructurePages(s: ArchState): Set<number> {
  const pages = new Set<number>();
  let level = [Number((s.cr3 >> 12n) & 0xfffffffffn)];
  for (let depth = 0; depth < 4 && level.length > 0; depth++) {
    const next: number[] = [];
    for (const n of level) {
      const page = s.memory.get(n);
      if (page === undefined || pages.has(n)) continue;
      pages.add(n);
      if (depth === 3) continue;
      const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
      for (let i = 0; i < 512; i++) {
        const entry = view.getBigUint64(8 * i, true);
        // Present, and not a large page (PS, below the PML4).
        if ((entry & 1n) === 0n || (depth > 0 && (entry & 0x80n) !== 0n)) continue;
        next.push(Number((entry >> 12n) & 0xfffffffffn));
      }
    }
    level = next;
  }
  return pages;
}

/** The instruction at `s`'s RIP, decoded by the spec. */
function decodeAt(s: ArchState): ReturnType<typeof decode> {
  const physical = (a: bigint) => BigInt(s.memory.get(Number(a >> 12n))?.[Number(a & 0xfffn)] ?? 0);
  const read64 = (a: bigint) => {
    let v = 0n;
    for (let i = 7n; i >= 0n; i--) v = (v << 8n) | physical(a + i);
    return v;
  };
  const byte = (i: number): number => {
    const p = translate(read64, s.cr3, s.cs.base + s.rip + BigInt(i)).physical;
    return p === null ? 0 : Number(physical(p));
  };
  return decode(byte, s.cs.l === 1);
}

function mnemonicAt(s: ArchState): string | undefined {
  const insn = decodeAt(s);
  return "mnemonic" in insn ? insn.mnemonic : undefined;
}

/** The flags the instruction at `s`'s RIP may leave undefined (the table's worst case). */
function undefinedFlagsAt(s: ArchState): bigint {
  const insn = decodeAt(s);
  return "mnemonic" in insn ? undefinedFlags(insn.mnemonic) : 0n;
}
