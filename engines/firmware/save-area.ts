// The 64-bit SMM state-save area QEMU's RSM reads (the AMD64 layout QEMU uses), as offsets from the
// save-area base (SMBASE + 0xFE00). Facts from ../../../shared/reference/emulator-harnesses.md.
import type { ArchState, Segment, TableRegister } from "../../contract/state.ts";
import { FieldReader, Fields } from "./asm.ts";

export const SAVE_AREA_SIZE = 0x200;

/** Segment records { selector u16, attributes u16, limit u32, base u64 }, ES CS SS DS FS GS order. */
export const SEGMENT_OFFSETS = { es: 0x00, cs: 0x10, ss: 0x20, ds: 0x30, fs: 0x40, gs: 0x50 } as const;
export const OFFSET = {
  gdtrLimit: 0x64,
  gdtrBase: 0x68,
  ldtr: 0x70,
  idtrLimit: 0x84,
  idtrBase: 0x88,
  tr: 0x90,
  efer: 0xd0,
  revision: 0xfc,
  smbase: 0x100,
  cr4: 0x148,
  cr3: 0x150,
  cr0: 0x158,
  dr7: 0x160,
  dr6: 0x168,
  rflags: 0x170,
  rip: 0x178,
} as const;

/** RSM reads SMBASE from the area when bit 17 (SMBASE relocation) of the revision is set. */
export const REVISION_ID = 0x00020064;

/** GPR offsets by SDM register number (0 RAX … 15 R15): RAX +0x1F8 down to RDI +0x1C0, R8 +0x1B8
 *  down to R15 +0x180. */
export function gprOffset(n: number): number {
  return 0x1f8 - 8 * n;
}

/** The attribute word: type[3:0] | S<<4 | DPL<<5 | P<<7 | valid<<8 | AVL<<12 | L<<13 | D/B<<14 |
 *  G<<15. Bochs takes bit 8 as its "valid" (usable) flag; QEMU ignores bits 8–11 and keeps no
 *  "unusable" flag, so an unusable segment is also stored as not present. */
export function attributesOf(s: Segment): number {
  const usable = s.unusable === 0 ? 1 : 0;
  const present = s.present === 1 && usable === 1 ? 1 : 0;
  return (s.type & 15) | (s.s << 4) | (s.dpl << 5) | (present << 7) | (usable << 8) | (s.avl << 12) | (s.l << 13) | (s.db << 14) | (s.g << 15);
}

export function segmentFromAttributes(selector: number, attributes: number, limit: number, base: bigint): Segment {
  const present = (attributes >> 7) & 1;
  const usable = (attributes >> 8) & 1;
  return {
    selector,
    base,
    limit,
    type: attributes & 15,
    s: (attributes >> 4) & 1,
    dpl: (attributes >> 5) & 3,
    present,
    avl: (attributes >> 12) & 1,
    l: (attributes >> 13) & 1,
    db: (attributes >> 14) & 1,
    g: (attributes >> 15) & 1,
    unusable: usable === 1 ? 0 : 1,
  };
}

function writeSegment(f: Fields, offset: number, s: Segment): void {
  f.u16(offset, s.selector);
  f.u16(offset + 2, attributesOf(s));
  f.u32(offset + 4, s.limit);
  f.u64(offset + 8, s.base);
}

function writeTable(f: Fields, limitOffset: number, baseOffset: number, t: TableRegister): void {
  f.u32(limitOffset, t.limit);
  f.u64(baseOffset, t.base);
}

/** The save area that makes RSM install `state` (all but CR2, CR8, the MSRs and memory). */
export function encodeSaveArea(state: ArchState, smbase: number): Uint8Array {
  const bytes = new Uint8Array(SAVE_AREA_SIZE);
  const f = new Fields(bytes);
  for (const [name, offset] of Object.entries(SEGMENT_OFFSETS)) writeSegment(f, offset, state[name as keyof typeof SEGMENT_OFFSETS]);
  writeTable(f, OFFSET.gdtrLimit, OFFSET.gdtrBase, state.gdtr);
  writeSegment(f, OFFSET.ldtr, state.ldtr);
  writeTable(f, OFFSET.idtrLimit, OFFSET.idtrBase, state.idtr);
  writeSegment(f, OFFSET.tr, state.tr);
  f.u64(OFFSET.efer, state.efer);
  f.u32(OFFSET.revision, REVISION_ID);
  f.u32(OFFSET.smbase, smbase);
  f.u32(OFFSET.cr4, state.cr4);
  f.u64(OFFSET.cr3, state.cr3);
  f.u32(OFFSET.cr0, state.cr0);
  f.u64(OFFSET.dr7, 0x400n);
  f.u64(OFFSET.dr6, 0xffff0ff0n);
  f.u32(OFFSET.rflags, state.rflags);
  f.u64(OFFSET.rip, state.rip);
  state.gpr.forEach((v, n) => f.u64(gprOffset(n), v));
  return bytes;
}

/** What a save area holds, decoded (for tests and diagnostics). */
export interface DecodedSaveArea {
  readonly segments: Readonly<Record<keyof typeof SEGMENT_OFFSETS | "ldtr" | "tr", Segment>>;
  readonly gdtr: TableRegister;
  readonly idtr: TableRegister;
  readonly efer: bigint;
  readonly revision: number;
  readonly smbase: number;
  readonly cr0: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly rflags: bigint;
  readonly rip: bigint;
  readonly gpr: readonly bigint[];
}

export function decodeSaveArea(bytes: Uint8Array): DecodedSaveArea {
  const f = new FieldReader(bytes);
  const seg = (o: number) => segmentFromAttributes(f.u16(o), f.u16(o + 2), f.u32(o + 4), f.u64(o + 8));
  return {
    segments: {
      es: seg(SEGMENT_OFFSETS.es), cs: seg(SEGMENT_OFFSETS.cs), ss: seg(SEGMENT_OFFSETS.ss),
      ds: seg(SEGMENT_OFFSETS.ds), fs: seg(SEGMENT_OFFSETS.fs), gs: seg(SEGMENT_OFFSETS.gs),
      ldtr: seg(OFFSET.ldtr), tr: seg(OFFSET.tr),
    },
    gdtr: { limit: f.u32(OFFSET.gdtrLimit), base: f.u64(OFFSET.gdtrBase) },
    idtr: { limit: f.u32(OFFSET.idtrLimit), base: f.u64(OFFSET.idtrBase) },
    efer: f.u64(OFFSET.efer),
    revision: f.u32(OFFSET.revision),
    smbase: f.u32(OFFSET.smbase),
    cr0: BigInt(f.u32(OFFSET.cr0)),
    cr3: f.u64(OFFSET.cr3),
    cr4: BigInt(f.u32(OFFSET.cr4)),
    rflags: BigInt(f.u32(OFFSET.rflags)),
    rip: f.u64(OFFSET.rip),
    gpr: Array.from({ length: 16 }, (_, n) => f.u64(gprOffset(n))),
  };
}
