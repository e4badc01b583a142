// Machine states for benchmarks and tests, on the vectors' shared layout
// (conformance/vectors/README.md "Layout shared by these tests"):
//   PML4 0x1000 → PDPT 0x2000 → PD 0x3000: 0–2 MiB supervisor, 2–4 MiB user, 4–6 MiB supervisor
//   (2 MiB pages), 6–8 MiB through the page table at 0x4000 (4 KiB pages, user, initially none
//   present); GDT 0x8000 (0x08 kernel CS64, 0x10 kernel SS, 0x18 user CS32, 0x20 user SS,
//   0x28 user CS64, 0x30 TSS); IDT 0x9000 (every gate: 64-bit interrupt gate, DPL 0, handler
//   `hlt; jmp .-1` at 0xb000 + 16·v); TSS 0xa000 (RSP0 0x20000, ISTn 0x21000 + 0x1000·(n−1));
//   kernel code 0x10000, LSTAR 0x11000; user code 0x200000, user stack top 0x210000.
import type { ArchState, Segment } from "../contract/state.ts";
import { DEFAULT_CPU } from "../contract/state.ts";

export const KERNEL_CS: Segment = { selector: 0x08, base: 0n, limit: 0xffffffff, type: 11, s: 1, dpl: 0, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 };
export const KERNEL_SS: Segment = { selector: 0x10, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
export const USER_CS: Segment = { selector: 0x2b, base: 0n, limit: 0xffffffff, type: 11, s: 1, dpl: 3, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 };
export const USER_SS: Segment = { selector: 0x23, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
const NULL_DATA: Segment = { selector: 0, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
const TSS_SEG: Segment = { selector: 0x30, base: 0xa000n, limit: 0x67, type: 11, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 };
const LDT_NULL: Segment = { selector: 0, base: 0n, limit: 0xffff, type: 2, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 1 };

export const KERNEL_CODE = 0x10000n;
export const LSTAR = 0x11000n;
export const USER_CODE = 0x200000n;
export const USER_STACK = 0x210000n;
export const KERNEL_STACK = 0x20000n;
export const PT_6M = 0x4000n;

/** Physical memory under construction: page number → 4 KiB. */
export class Memory {
  readonly pages = new Map<number, Uint8Array>();
  page(n: number): Uint8Array {
    let p = this.pages.get(n);
    if (p === undefined) this.pages.set(n, (p = new Uint8Array(4096)));
    return p;
  }
  write(address: bigint, bytes: Uint8Array | readonly number[]): void {
    for (let i = 0; i < bytes.length; i++) {
      const a = address + BigInt(i);
      this.page(Number(a >> 12n))[Number(a & 0xfffn)] = bytes[i]!;
    }
  }
  write64(address: bigint, value: bigint): void {
    const b: number[] = [];
    for (let i = 0n; i < 8n; i++) b.push(Number((value >> (8n * i)) & 0xffn));
    this.write(address, b);
  }
}

/** An IDT gate: 64-bit interrupt (14) or trap (15) gate. */
export function gate(target: bigint, opts: { selector?: number; dpl?: number; ist?: number; type?: number; present?: boolean } = {}): [bigint, bigint] {
  const sel = BigInt(opts.selector ?? 0x08);
  const attrs = BigInt(((opts.present ?? true) ? 0x80 : 0) | ((opts.dpl ?? 0) << 5) | (opts.type ?? 14));
  const lo = (target & 0xffffn) | (sel << 16n) | (BigInt(opts.ist ?? 0) << 32n) | (attrs << 40n) | (((target >> 16n) & 0xffffn) << 48n);
  return [lo, (target >> 32n) & 0xffffffffn];
}

export interface LayoutOptions {
  /** Code placed at RIP (kernel: 0x10000, user: 0x200000). */
  readonly user?: boolean;
}

/** The shared layout with CPL 0 at 0x10000 (or CPL 3 at 0x200000 with `user`). */
export function baseMemory(): Memory {
  const mem = new Memory();
  mem.write64(0x1000n, 0x2000n | 7n);
  mem.write64(0x2000n, 0x3000n | 7n);
  mem.write64(0x3000n, 0x000000n | 0x83n);
  mem.write64(0x3008n, 0x200000n | 0x87n);
  mem.write64(0x3010n, 0x400000n | 0x83n);
  mem.write64(0x3018n, PT_6M | 7n);
  const gdt = [
    0n,
    0x00af9b000000ffffn, // 0x08 kernel CS64
    0x00cf93000000ffffn, // 0x10 kernel SS
    0x00cffb000000ffffn, // 0x18 user CS32
    0x00cff3000000ffffn, // 0x20 user SS
    0x00affb000000ffffn, // 0x28 user CS64
    0x00008b00a0000067n, // 0x30 TSS (busy), base 0xa000, limit 0x67
    0n,
  ];
  gdt.forEach((d, i) => mem.write64(0x8000n + 8n * BigInt(i), d));
  for (let v = 0; v < 256; v++) {
    const [lo, hi] = gate(0xb000n + 16n * BigInt(v));
    mem.write64(0x9000n + 16n * BigInt(v), lo);
    mem.write64(0x9008n + 16n * BigInt(v), hi);
    mem.write(0xb000n + 16n * BigInt(v), [0xf4, 0xeb, 0xfd]);
  }
  mem.write64(0xa004n, KERNEL_STACK);
  for (let n = 1; n <= 7; n++) mem.write64(0xa024n + 8n * BigInt(n - 1), 0x21000n + 0x1000n * BigInt(n - 1));
  mem.write(0xa066n, [0x68, 0x00]);
  return mem;
}

/** The machine state for a memory image: kernel (CPL 0, RIP 0x10000, RSP 0x20000) or user
 *  (CPL 3, RIP 0x200000, RSP 0x210000, IF = 1). */
export function layoutState(mem: Memory, opts: LayoutOptions = {}): ArchState {
  const user = opts.user ?? false;
  const gpr = new Array<bigint>(16).fill(0n);
  gpr[4] = user ? USER_STACK : KERNEL_STACK;
  return {
    gpr,
    rip: user ? USER_CODE : KERNEL_CODE,
    rflags: user ? 0x202n : 0x2n,
    cs: user ? USER_CS : KERNEL_CS,
    ss: user ? USER_SS : KERNEL_SS,
    ds: NULL_DATA, es: NULL_DATA, fs: NULL_DATA, gs: NULL_DATA,
    tr: TSS_SEG, ldtr: LDT_NULL,
    gdtr: { base: 0x8000n, limit: 0x3f },
    idtr: { base: 0x9000n, limit: 0xfff },
    cr0: 0x80050033n,
    cr2: 0n,
    cr3: 0x1000n,
    cr4: 0x620n,
    cr8: 0n,
    efer: 0xd01n,
    star: 0x0018000800000000n,
    lstar: LSTAR,
    cstar: 0x12000n,
    fmask: 0x47700n,
    kernelGsBase: 0n,
    memory: mem.pages,
    cpu: DEFAULT_CPU,
  };
}
