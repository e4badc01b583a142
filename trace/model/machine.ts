// Reading a machine state for display: the IDT gate, a GDT descriptor, the TSS stack fields, a
// stack word, the privilege and mode. What the trace model derives from the states before and
// after a step instead of asking the engines for it. Display only: a walk checks present bits and
// large pages (trace/disassemble.ts), never permissions, and sets nothing.
import type { ArchState } from "../../contract/state.ts";
import { displayTranslate, pageReader } from "../disassemble.ts";

export const MASK64 = (1n << 64n) - 1n;

export type Mode = "64" | "compat32" | "compat16";

export function cplOf(s: ArchState): number {
  return s.cs.selector & 3;
}

/** 64-bit mode, or compatibility mode with a 32- or 16-bit code segment (EFER.LMA = 1 here). */
export function modeOf(s: ArchState): Mode {
  if (s.cs.l === 1) return "64";
  return s.cs.db === 1 ? "compat32" : "compat16";
}

export function canonical(v: bigint): boolean {
  const top = (v >> 47n) & 0x1_ffffn;
  return top === 0n || top === 0x1_ffffn;
}

/** Little-endian physical read (absent pages read as zero). */
export function readPhysical(s: ArchState, address: bigint, size: number): bigint {
  const read = pageReader(s.memory);
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(read(address + BigInt(i)));
  return v;
}

/** An 8-byte little-endian read at a linear address, or null where the page is not mapped. */
export function readLinear64(s: ArchState, linear: bigint): bigint | null {
  const read = pageReader(s.memory);
  const first = displayTranslate(s.cr3, linear & MASK64, read);
  if (first === null) return null;
  // A word that crosses a page: translate each byte's page.
  if ((linear & 0xfffn) <= 0xff8n) return readPhysical(s, first, 8);
  let v = 0n;
  for (let i = 7; i >= 0; i--) {
    const p = displayTranslate(s.cr3, (linear + BigInt(i)) & MASK64, read);
    if (p === null) return null;
    v = (v << 8n) | BigInt(read(p));
  }
  return v;
}

/** The 16-byte IA-32e IDT gate (SDM Vol. 3A §6.14.1, Figure 6-8). */
export interface GateView {
  readonly vector: number;
  /** Linear address of the gate. */
  readonly address: bigint;
  /** Whether the gate lies within IDTR.limit. */
  readonly withinLimit: boolean;
  readonly offset: bigint;
  readonly selector: number;
  readonly ist: number;
  readonly type: number;
  readonly s: number;
  readonly dpl: number;
  readonly present: number;
}

export function gateOf(s: ArchState, vector: number): GateView | null {
  const address = (s.idtr.base + BigInt(vector * 16)) & MASK64;
  const low = readLinear64(s, address);
  const high = readLinear64(s, address + 8n);
  if (low === null || high === null) return null;
  return {
    vector,
    address,
    withinLimit: vector * 16 + 15 <= s.idtr.limit,
    offset: (low & 0xffffn) | (((low >> 48n) & 0xffffn) << 16n) | ((high & 0xffff_ffffn) << 32n),
    selector: Number((low >> 16n) & 0xffffn),
    ist: Number((low >> 32n) & 7n),
    type: Number((low >> 40n) & 0xfn),
    s: Number((low >> 44n) & 1n),
    dpl: Number((low >> 45n) & 3n),
    present: Number((low >> 47n) & 1n),
  };
}

/** A code or data segment descriptor read from the GDT (LDT selectors are not read here). */
export interface DescriptorView {
  readonly selector: number;
  readonly address: bigint;
  readonly withinLimit: boolean;
  readonly type: number;
  readonly s: number;
  readonly dpl: number;
  readonly present: number;
  readonly l: number;
  readonly db: number;
}

export function descriptorOf(s: ArchState, selector: number): DescriptorView | null {
  if ((selector & 4) !== 0) return null;
  const index = selector >> 3;
  const address = (s.gdtr.base + BigInt(index * 8)) & MASK64;
  const raw = readLinear64(s, address);
  if (raw === null) return null;
  return {
    selector,
    address,
    withinLimit: index * 8 + 7 <= s.gdtr.limit,
    type: Number((raw >> 40n) & 0xfn),
    s: Number((raw >> 44n) & 1n),
    dpl: Number((raw >> 45n) & 3n),
    present: Number((raw >> 47n) & 1n),
    l: Number((raw >> 53n) & 1n),
    db: Number((raw >> 54n) & 1n),
  };
}

export function isCodeDescriptor(d: DescriptorView): boolean {
  return d.s === 1 && (d.type & 8) !== 0;
}

export function isConforming(d: DescriptorView): boolean {
  return isCodeDescriptor(d) && (d.type & 4) !== 0;
}

/** TSS fields (DT-03): RSPn at 04h + 8n, ISTn at 24h + 8(n − 1). */
export function tssFieldOffset(field: string): number {
  const rsp = /^RSP([0-2])$/.exec(field);
  if (rsp !== null) return 4 + 8 * Number(rsp[1]);
  const ist = /^IST([1-7])$/.exec(field);
  if (ist !== null) return 0x24 + 8 * (Number(ist[1]) - 1);
  throw new Error(`not a TSS stack field: ${field}`);
}

export const TSS_STACK_FIELDS = ["RSP0", "RSP1", "RSP2", "IST1", "IST2", "IST3", "IST4", "IST5", "IST6", "IST7"] as const;

export interface TssField {
  readonly field: string;
  readonly offset: number;
  /** The linear address of the field (TR.base + offset). */
  readonly address: bigint;
  /** null: beyond TR.limit or not mapped. */
  readonly value: bigint | null;
}

export function tssField(s: ArchState, field: string): TssField {
  const offset = tssFieldOffset(field);
  const address = (s.tr.base + BigInt(offset)) & MASK64;
  const value = offset + 7 <= s.tr.limit ? readLinear64(s, address) : null;
  return { field, offset, address, value };
}

/** Every TSS stack field with a value (RSP0..2, IST1..7). */
export function tssStacks(s: ArchState): TssField[] {
  return TSS_STACK_FIELDS.map((f) => tssField(s, f));
}

export const hex = (v: bigint | number): string => "0x" + v.toString(16);

/** A 64-bit value as 16 hex digits in groups of four ("ffff_8000_0000_1000"), for frame cells. */
export function wide(v: bigint): string {
  const digits = (v & MASK64).toString(16).padStart(16, "0");
  return `${digits.slice(0, 4)}_${digits.slice(4, 8)}_${digits.slice(8, 12)}_${digits.slice(12)}`;
}
