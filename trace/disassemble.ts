// Disassembly for traces and diffs, with iced-x86's GAS (AT&T) formatter, the syntax Linux entry
// code is written in. Display only: nothing here is part of the model's semantics.
import iced from "iced-x86";

const { Decoder, DecoderOptions, Formatter, FormatterSyntax, Code } = iced;

let formatter: InstanceType<typeof Formatter> | undefined;

function getFormatter(): InstanceType<typeof Formatter> {
  // One formatter for the life of the process (its wasm memory is reused, never freed).
  if (formatter === undefined) {
    formatter = new Formatter(FormatterSyntax.Gas);
    // objdump style: lower-case hex, branch targets without leading zeros.
    formatter.uppercaseHex = false;
    formatter.branchLeadingZeros = false;
  }
  return formatter;
}

export type Bitness = 16 | 32 | 64;

export interface Disassembly {
  readonly text: string;
  /** Encoded length; 0 when the bytes do not form an instruction. */
  readonly length: number;
}

/** The first instruction in `bytes`, placed at `ip`. */
export function disassemble(bytes: Uint8Array, bitness: Bitness, ip: bigint): Disassembly {
  if (bytes.length === 0) return { text: "(no bytes)", length: 0 };
  const decoder = new Decoder(bitness, bytes, DecoderOptions.None);
  try {
    decoder.ip = ip & 0xffff_ffff_ffff_ffffn;
    const instruction = decoder.decode();
    try {
      if (instruction.code === Code.INVALID) return { text: `(bad: ${hexBytes(bytes.subarray(0, 15))})`, length: 0 };
      return { text: getFormatter().format(instruction), length: instruction.length };
    } finally {
      instruction.free();
    }
  } finally {
    decoder.free();
  }
}

function hexBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** What the display needs from a machine state (ArchState and the spec's Machine both fit). */
export interface CodeView {
  readonly rip: bigint;
  readonly cr3: bigint;
  readonly efer: bigint;
  readonly cs: { readonly base: bigint; readonly l: number; readonly db: number };
}

export function bitnessOf(s: CodeView): Bitness {
  const lma = (s.efer & (1n << 10n)) !== 0n;
  if (lma && s.cs.l === 1) return 64;
  return s.cs.db === 1 ? 32 : 16;
}

/** Linear address of RIP: CS.base applies outside 64-bit mode. */
export function ripLinear(s: CodeView): bigint {
  return bitnessOf(s) === 64 ? s.rip : (s.cs.base + (s.rip & 0xffff_ffffn)) & 0xffff_ffffn;
}

/**
 * Linear → physical for display: a 4-level walk checking present bits and large pages only (no
 * permission checks, no accessed/dirty updates). null when a level is not present.
 */
export function displayTranslate(cr3: bigint, linear: bigint, readPhys: (address: bigint) => number): bigint | null {
  const read64 = (address: bigint) => {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(readPhys(address + BigInt(i)));
    return v;
  };
  let table = cr3 & 0x000f_ffff_ffff_f000n;
  for (const shift of [39n, 30n, 21n, 12n]) {
    const entry = read64(table + ((linear >> shift) & 0x1ffn) * 8n);
    if ((entry & 1n) === 0n) return null;
    const frame = entry & 0x000f_ffff_ffff_f000n;
    if (shift !== 12n && (entry & 0x80n) !== 0n) {
      const mask = (1n << shift) - 1n;
      return (frame & ~mask) | (linear & mask);
    }
    table = frame;
  }
  return table | (linear & 0xfffn);
}

/** Up to 15 instruction bytes at RIP, stopping at the first unmapped page. */
export function bytesAtRip(s: CodeView, readPhys: (address: bigint) => number): Uint8Array {
  const out: number[] = [];
  const start = ripLinear(s);
  for (let i = 0; i < 15; i++) {
    const linear = (start + BigInt(i)) & 0xffff_ffff_ffff_ffffn;
    const physical = displayTranslate(s.cr3, linear, readPhys);
    if (physical === null) break;
    out.push(readPhys(physical));
  }
  return Uint8Array.from(out);
}

/** A physical byte reader over a page map (absent pages read as zero). */
export function pageReader(pages: ReadonlyMap<number, Uint8Array>): (address: bigint) => number {
  return (address) => pages.get(Number(address >> 12n))?.[Number(address & 0xfffn)] ?? 0;
}

/** "0x11001: hlt" for the instruction at RIP, or a note when RIP is not mapped. */
export function describeInstructionAt(s: CodeView, readPhys: (address: bigint) => number): string {
  const linear = ripLinear(s);
  const bytes = bytesAtRip(s, readPhys);
  if (bytes.length === 0) return `0x${linear.toString(16)}: (not mapped)`;
  return `0x${linear.toString(16)}: ${disassemble(bytes, bitnessOf(s), linear).text}`;
}
