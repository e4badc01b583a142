// Descriptor formats as data and their bytes (SDM Vol. 3A 3.4.5 segment descriptors, 7.2.3 the
// 64-bit TSS descriptor, 6.14.1 64-bit IDT gate descriptors, 8.7 the 64-bit TSS). Encoding and
// decoding both live here so tests can check one against the other.
import type { Segment } from "../contract/state.ts";

/** A code, data or system segment descriptor's fields (the low 8 bytes). */
export interface DescriptorFields {
  /** 4-bit type (code: 8..15, data: 0..7 when `s` = 1; system types when `s` = 0). */
  readonly type: number;
  /** 1 = code/data, 0 = system. */
  readonly s: number;
  readonly dpl: number;
  /** Present. */
  readonly p: number;
  readonly avl: number;
  /** 64-bit code. */
  readonly l: number;
  /** D/B. */
  readonly db: number;
  /** Granularity: the limit counts 4 KiB units. */
  readonly g: number;
  /** Limit bits 19:0 as stored. */
  readonly limit: number;
  /** Base bits 31:0. */
  readonly base: number;
}

const FLAT = { avl: 0, g: 1, limit: 0xfffff, base: 0, p: 1, s: 1 } as const;

/** Flat 4 GiB descriptors, by kind. Type 11 = execute/read, accessed; 3 = read/write, accessed. */
export const FLAT_DESCRIPTORS = {
  code64: (dpl: number): DescriptorFields => ({ ...FLAT, type: 11, dpl, l: 1, db: 0 }),
  code32: (dpl: number): DescriptorFields => ({ ...FLAT, type: 11, dpl, l: 0, db: 1 }),
  data: (dpl: number): DescriptorFields => ({ ...FLAT, type: 3, dpl, l: 0, db: 1 }),
  /** Conforming 64-bit code (type 15: conforming, readable, accessed). */
  conforming64: (dpl: number): DescriptorFields => ({ ...FLAT, type: 15, dpl, l: 1, db: 0 }),
} as const;

/** The 8-byte segment descriptor. */
export function encodeDescriptor(d: DescriptorFields): bigint {
  const limit = BigInt(d.limit & 0xfffff);
  const base = BigInt(d.base >>> 0);
  const access = BigInt((d.type & 15) | ((d.s & 1) << 4) | ((d.dpl & 3) << 5) | ((d.p & 1) << 7));
  const flags = BigInt((d.avl & 1) | ((d.l & 1) << 1) | ((d.db & 1) << 2) | ((d.g & 1) << 3));
  return (limit & 0xffffn) | ((base & 0xffffffn) << 16n) | (access << 40n) | ((limit >> 16n) << 48n) | (flags << 52n) | ((base >> 24n) << 56n);
}

export function decodeDescriptor(q: bigint): DescriptorFields {
  const bits = (from: bigint, n: bigint) => Number((q >> from) & ((1n << n) - 1n));
  return {
    limit: bits(0n, 16n) | (bits(48n, 4n) << 16),
    base: (bits(16n, 24n) | (bits(56n, 8n) << 24)) >>> 0,
    type: bits(40n, 4n), s: bits(44n, 1n), dpl: bits(45n, 2n), p: bits(47n, 1n),
    avl: bits(52n, 1n), l: bits(53n, 1n), db: bits(54n, 1n), g: bits(55n, 1n),
  };
}

/** The hidden part a segment load of `selector` with descriptor `d` produces (limit scaled by G). */
export function segmentFrom(selector: number, d: DescriptorFields): Segment {
  const limit = d.g ? ((d.limit & 0xfffff) * 4096 + 4095) >>> 0 : d.limit & 0xfffff;
  return { selector, base: BigInt(d.base >>> 0), limit, type: d.type, s: d.s, dpl: d.dpl, present: d.p, db: d.db, l: d.l, g: d.g, avl: d.avl, unusable: 0 };
}

/** The 16-byte 64-bit TSS descriptor (type 9 available, 11 busy): [low, high]. */
export function encodeTssDescriptor(base: bigint, limit: number, busy: boolean, dpl = 0): readonly [bigint, bigint] {
  const low = encodeDescriptor({ type: busy ? 11 : 9, s: 0, dpl, p: 1, avl: 0, l: 0, db: 0, g: 0, limit, base: Number(base & 0xffffffffn) });
  return [low, (base >> 32n) & 0xffffffffn];
}

/** An IA-32e IDT gate (16 bytes). */
export interface GateFields {
  /** Handler address. */
  readonly offset: bigint;
  /** Code segment selector of the handler. */
  readonly selector: number;
  /** Byte 4: IST index in bits 2:0 (0 = no stack switch by IST); bits 7:3 are reserved (zero). */
  readonly ist: number;
  /** 14 interrupt gate (clears IF), 15 trap gate. */
  readonly type: number;
  /** 0 for a gate. */
  readonly s: number;
  /** The highest CPL allowed to reach the gate with INT n / INT3 / INTO. */
  readonly dpl: number;
  readonly p: number;
  /** Bits 63:32 of the high quadword (reserved, zero). */
  readonly reserved: number;
}

/** The layout's usual gate: a present 64-bit interrupt gate, DPL 0, no IST. */
export function interruptGate(offset: bigint, selector: number): GateFields {
  return { offset, selector, ist: 0, type: 14, s: 0, dpl: 0, p: 1, reserved: 0 };
}

/** The two quadwords of an interrupt gate to `offset` with `fields` changed (selector 0x08, the
 *  shared layout's kernel CS, unless given). */
export function gate(offset: bigint, fields: Partial<GateFields> = {}): readonly [bigint, bigint] {
  return encodeGate({ ...interruptGate(offset, 0x08), ...fields });
}

/** The gate's two quadwords [low, high]. */
export function encodeGate(g: GateFields): readonly [bigint, bigint] {
  const offset = BigInt.asUintN(64, g.offset);
  const attributes = BigInt((g.type & 15) | ((g.s & 1) << 4) | ((g.dpl & 3) << 5) | ((g.p & 1) << 7));
  const low = (offset & 0xffffn) | (BigInt(g.selector & 0xffff) << 16n) | (BigInt(g.ist & 0xff) << 32n) | (attributes << 40n) | (((offset >> 16n) & 0xffffn) << 48n);
  const high = ((offset >> 32n) & 0xffffffffn) | (BigInt(g.reserved >>> 0) << 32n);
  return [low, high];
}

export function decodeGate(low: bigint, high: bigint): GateFields {
  const bits = (q: bigint, from: bigint, n: bigint) => Number((q >> from) & ((1n << n) - 1n));
  return {
    offset: (low & 0xffffn) | (((low >> 48n) & 0xffffn) << 16n) | ((high & 0xffffffffn) << 32n),
    selector: bits(low, 16n, 16n),
    ist: bits(low, 32n, 8n),
    type: bits(low, 40n, 4n), s: bits(low, 44n, 1n), dpl: bits(low, 45n, 2n), p: bits(low, 47n, 1n),
    reserved: bits(high, 32n, 32n),
  };
}

/** Offsets in the 64-bit TSS. */
export const TSS_OFFSETS = {
  /** RSP0..RSP2 at 4 + 8·n. */
  rsp: (n: number): number => 4 + 8 * n,
  /** IST1..IST7 at 0x24 + 8·(n − 1). */
  ist: (n: number): number => 0x24 + 8 * (n - 1),
  /** The I/O map base address (16 bits). */
  ioMapBase: 0x66,
} as const;
