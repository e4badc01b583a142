// Register numbers, RFLAGS bits and control-register bits, by their SDM names.

export const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
export const R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15;

/** RFLAGS bits (SDM Vol. 1 §3.4.3). */
export const RFLAGS = {
  CF: 1n << 0n,
  FIXED1: 1n << 1n,
  PF: 1n << 2n,
  AF: 1n << 4n,
  ZF: 1n << 6n,
  SF: 1n << 7n,
  TF: 1n << 8n,
  IF: 1n << 9n,
  DF: 1n << 10n,
  OF: 1n << 11n,
  IOPL: 3n << 12n,
  NT: 1n << 14n,
  RF: 1n << 16n,
  VM: 1n << 17n,
  AC: 1n << 18n,
  VIF: 1n << 19n,
  VIP: 1n << 20n,
  ID: 1n << 21n,
} as const;

/** Bits software can ever set in RFLAGS; the rest are reserved (bit 1 reads as 1). */
export const RFLAGS_DEFINED = 0x3f7fd5n;

export const CR0 = { PE: 1n << 0n, MP: 1n << 1n, EM: 1n << 2n, TS: 1n << 3n, ET: 1n << 4n, NE: 1n << 5n, WP: 1n << 16n, AM: 1n << 18n, NW: 1n << 29n, CD: 1n << 30n, PG: 1n << 31n } as const;
export const CR4 = { TSD: 1n << 2n, DE: 1n << 3n, PSE: 1n << 4n, PAE: 1n << 5n, PGE: 1n << 7n, PCE: 1n << 8n, UMIP: 1n << 11n, LA57: 1n << 12n, FSGSBASE: 1n << 16n, PCIDE: 1n << 17n, OSXSAVE: 1n << 18n, SMEP: 1n << 20n, SMAP: 1n << 21n } as const;
/** DR6.BS: the #DB was the single-step trap (SDM Vol. 3A §19.2.3). */
export const DR6_BS = 1n << 14n;

export const EFER = { SCE: 1n << 0n, LME: 1n << 8n, LMA: 1n << 10n, NXE: 1n << 11n } as const;

export const MSR = {
  EFER: 0xc000_0080,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  FMASK: 0xc000_0084,
  FS_BASE: 0xc000_0100,
  GS_BASE: 0xc000_0101,
  KERNEL_GS_BASE: 0xc000_0102,
  TSC: 0x10,
  APIC_BASE: 0x1b,
  SYSENTER_CS: 0x174,
  SYSENTER_ESP: 0x175,
  SYSENTER_EIP: 0x176,
  PAT: 0x277,
  TSC_AUX: 0xc000_0103,
} as const;

export const MASK64 = (1n << 64n) - 1n;

/** `value & sizeMask(size)` for the operand sizes, as BigInt.asUintN, which V8 computes without
 *  allocating the intermediate BigInts a `&` makes (several times faster on the hot paths). */
export function truncate(value: bigint, size: number): bigint {
  switch (size) {
    case 8: return BigInt.asUintN(64, value);
    case 4: return BigInt.asUintN(32, value);
    case 2: return BigInt.asUintN(16, value);
    case 1: return BigInt.asUintN(8, value);
    default: return value & sizeMask(size);
  }
}

/** `BigInt(n)` for 0 ≤ n ≤ 64 (operand sizes, instruction lengths, stack-frame offsets) from a
 *  table: converting a Number to a BigInt is a runtime call. */
const SMALL: readonly bigint[] = Array.from({ length: 65 }, (_, i) => BigInt(i));
export function smallBigInt(n: number): bigint {
  return SMALL[n] ?? BigInt(n);
}

/**
 * A scratch 64-bit cell seen as two 32-bit halves: a BigInt stored there (modulo 2^64, as
 * BigInt.asUintN(64)) is split into exact Numbers without V8's BigInt-to-Number conversion, a
 * runtime call that costs several times more (every memory access and fetch splits an address).
 * `split64(x)`, then `splitLow()` / `splitHigh()`, before anything else splits.
 */
const CELL = new BigUint64Array(1);
const HALVES = new Uint32Array(CELL.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LOW_HALF = LITTLE_ENDIAN ? 0 : 1;
const HIGH_HALF = LITTLE_ENDIAN ? 1 : 0;
export function split64(x: bigint): void {
  CELL[0] = x;
}
/** Bits 31:0 of the last `split64` value. */
export function splitLow(): number {
  return HALVES[LOW_HALF]!;
}
/** Bits 63:32 of the last `split64` value. */
export function splitHigh(): number {
  return HALVES[HIGH_HALF]!;
}
/** high·2^32 + low (both 32-bit) as a BigInt, through the same cell: `BigInt(number)` above 2^32
 *  is a runtime call as well. */
export function joinHalves(low: number, high: number): bigint {
  HALVES[LOW_HALF] = low;
  HALVES[HIGH_HALF] = high;
  return CELL[0]!;
}

/** The bits of a `size`-byte value (8 and more: all 64). */
export function sizeMask(size: number): bigint {
  // The four operand sizes are constants (this runs on every register access); others computed.
  switch (size) {
    case 1: return 0xffn;
    case 2: return 0xffffn;
    case 4: return 0xffff_ffffn;
    default: return size >= 8 ? MASK64 : (1n << BigInt(8 * size)) - 1n;
  }
}

/** GLOBAL-01: CPL is CS.RPL. */
export function cpl(m: { readonly cs: { readonly selector: number } }): number {
  return m.cs.selector & 3;
}

/** GLOBAL-02: 64-bit mode = EFER.LMA and CS.L (the model only runs in IA-32e mode). */
export function in64BitMode(m: { readonly efer: bigint; readonly cs: { readonly l: number } }): boolean {
  return (m.efer & EFER.LMA) !== 0n && m.cs.l === 1;
}

export function iopl(m: { readonly rflags: bigint }): number {
  // RFLAGS[13:12], split from the BigInt without a BigInt-to-Number conversion.
  split64(m.rflags);
  return (splitLow() >>> 12) & 3;
}

/** CANON-01: with 4-level paging, bits 63:47 all equal. */
export function canonical(address: bigint): boolean {
  // Compared, not shifted: a shift makes a new BigInt, and this runs on every access.
  return (address >= 0n && address < 0x8000_0000_0000n) || (address >= 0xffff_8000_0000_0000n && address <= MASK64);
}

/** Sign-extends the low `bits` bits of `value` to 64 bits (as an unsigned 64-bit bigint). */
export function signExtend(value: bigint, bits: number): bigint {
  return BigInt.asUintN(64, BigInt.asIntN(bits, value));
}
