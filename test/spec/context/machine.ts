// Synthetic machines for the context-switch checker's tests: a tiny kernel layout and the
// boundary transitions applied as plain state changes (the checker only looks at states and
// events, so it can be tested without running an engine).
//   Task A: PML4 0x1000 → PDPT 0x2000 → PD 0x3000; task B: 0x5000 → 0x6000 → 0x7000; both map
//   0–2 MiB supervisor (kernel) and 2–4 MiB user (code at 0x200100, stacks up to 0x3ff000) with
//   2 MiB pages. IDT 0x10000 (handler of vector v at 0x11000 + 16·v; 0x80 DPL 3, #DF on IST1),
//   TSS 0x12000 (RSP0 0x20000, IST1 0x30000), GDT 0x13000 (0x08 kernel CS, 0x10 kernel SS, 0x18 user
//   SS, 0x20 user CS, 0x28 TSS), per-CPU 0x14000, LSTAR 0x15000. Built with the guest kit.
import type { ArchState, Segment } from "../../../contract/state.ts";
import { GPR_NAMES } from "../../../contract/schema.ts";
import { FLAT_DESCRIPTORS, buildGuest, defineLayout, identity, type GuestLayout } from "../../../guest/index.ts";
import type { EngineEvent } from "../../../contract/engine.ts";

export const TASK_A_CR3 = 0x1000n;
export const TASK_B_CR3 = 0x5000n;
export const IDT = 0x10000n;
export const TSS = 0x12000n;
export const PERCPU = 0x14000n;
export const LSTAR = 0x15000n;
export const RSP0_A = 0x20000n;
export const RSP0_B = 0x22000n;
export const IST1 = 0x30000n;
export const USER_RIP = 0x200100n;
export const USER_RSP = 0x3ff000n;

const seg = (selector: number, dpl: number, code: boolean): Segment => ({
  selector, base: 0n, limit: 0xffffffff, type: code ? 11 : 3, s: 1, dpl, present: 1, db: code ? 0 : 1, l: code ? 1 : 0, g: 1, avl: 0, unusable: 0,
});
export const KERNEL_CS = seg(0x08, 0, true);
export const KERNEL_SS = seg(0x10, 0, false);
export const USER_SS = seg(0x1b, 3, false);
export const USER_CS = seg(0x23, 3, true);


/** Copy-on-write write of one qword into a state's memory. */
export function poke(s: ArchState, address: bigint, value: bigint): ArchState {
  const memory = new Map(s.memory);
  const n = Number(address >> 12n);
  const page = new Uint8Array(memory.get(n) ?? new Uint8Array(4096));
  new DataView(page.buffer).setBigUint64(Number(address & 0xfffn), value, true);
  memory.set(n, page);
  return { ...s, memory };
}

export const handler = (vector: number): bigint => 0x11000n + 16n * BigInt(vector);

/** The tiny kernel layout above, as a guest kit layout (guest/layout.ts). */
export const LAYOUT: GuestLayout = defineLayout({
  gdt: {
    base: 0x13000n,
    entries: [
      { name: "kernelCode", selector: 0x08, descriptor: FLAT_DESCRIPTORS.code64(0) },
      { name: "kernelData", selector: 0x10, descriptor: FLAT_DESCRIPTORS.data(0) },
      { name: "userData", selector: 0x18, descriptor: FLAT_DESCRIPTORS.data(3) },
      { name: "userCode", selector: 0x20, descriptor: FLAT_DESCRIPTORS.code64(3) },
    ],
    tssSelector: 0x28,
  },
  idt: { base: IDT, stubs: null, handler, userVectors: [0x80], ist: { 8: 1 } },
  tss: { base: TSS, rsp: [RSP0_A, 0n, 0n], ist: [IST1] },
  paging: { tables: [TASK_A_CR3, 0x2000n, 0x3000n], mappings: [identity(0n, 0x200000n, "2M", false), identity(0x200000n, 0x200000n, "2M", true)] },
  addressSpaces: [{ tables: [TASK_B_CR3, 0x6000n, 0x7000n], mappings: [identity(0n, 0x200000n, "2M", false), identity(0x200000n, 0x200000n, "2M", true)] }],
  stacks: { kernel: RSP0_A, user: USER_RSP, ist: [IST1] },
  code: { user: USER_RIP },
  percpu: { base: PERCPU, fields: [] },
  haltPads: [],
  msrs: { lstar: LSTAR, cstar: 0n, fmask: 0x47700n },
  control: { cr0: 0x80010033n, cr4: 0x20n },
});

/** Task A in user mode, about to run at USER_RIP, with recognisable register values. */
export function userState(): ArchState {
  const regs = Object.fromEntries(GPR_NAMES.map((name, i) => [name, 0x1000n * BigInt(i + 1) + 0x11n]));
  return buildGuest(LAYOUT, { start: { ring: 3, regs, rsp: USER_RSP } }).state;
}

export const withGpr = (s: ArchState, index: number, value: bigint): ArchState => {
  const gpr = [...s.gpr];
  gpr[index] = value;
  return { ...s, gpr };
};

export const SYSCALL_BYTES = Uint8Array.from([0x0f, 0x05]);
export const SYSRETQ_BYTES = Uint8Array.from([0x48, 0x0f, 0x07]);
export const SWAPGS_BYTES = Uint8Array.from([0x0f, 0x01, 0xf8]);

/** SYSCALL from user mode: RCX = next RIP, R11 = RFLAGS, IF cleared, CPL 0 at LSTAR. */
export function syscall(s: ArchState): { event: EngineEvent; after: ArchState } {
  let after = withGpr(s, 1, s.rip + 2n);
  after = withGpr(after, 11, s.rflags & ~(1n << 16n));
  after = { ...after, rip: LSTAR, rflags: 0x2n, cs: KERNEL_CS, ss: KERNEL_SS };
  return { event: { kind: "retired", rip: s.rip }, after };
}

/** SYSRETQ to RCX with RFLAGS from R11. */
export function sysret(s: ArchState, at = 0x15100n): { event: EngineEvent; after: ArchState } {
  const after = { ...s, rip: s.gpr[1]!, rflags: (s.gpr[11]! & 0x3c7fd7n) | 2n, cs: USER_CS, ss: USER_SS };
  return { event: { kind: "retired", rip: at }, after };
}

export function swapgs(s: ArchState, at = 0x15000n): { event: EngineEvent; after: ArchState } {
  return { event: { kind: "retired", rip: at }, after: { ...s, rip: s.rip + 3n, gs: { ...s.gs, base: s.kernelGsBase }, kernelGsBase: s.gs.base } };
}

/** A kernel step that changes nothing but RIP (and optionally RSP). */
export function kernelStep(s: ArchState, rsp?: bigint): { event: EngineEvent; after: ArchState } {
  const after = rsp === undefined ? { ...s, rip: s.rip + 1n } : withGpr({ ...s, rip: s.rip + 1n }, 4, rsp);
  return { event: { kind: "retired", rip: s.rip }, after };
}

/** Delivery of `vector` from user mode through the TSS (frame written at RSP0 or the IST). */
export function deliverFromUser(s: ArchState, vector: number, source: "exception" | "external" | "software", errorCode?: number, top = RSP0_A): { event: EngineEvent; after: ArchState } {
  const frame = [s.rip, BigInt(s.cs.selector), s.rflags, s.gpr[4]!, BigInt(s.ss.selector)];
  if (errorCode !== undefined) frame.unshift(BigInt(errorCode));
  const rsp = (top & ~0xfn) - 8n * BigInt(frame.length);
  let after = withGpr(s, 4, rsp);
  frame.forEach((v, i) => (after = poke(after, rsp + 8n * BigInt(i), v)));
  after = { ...after, rip: handler(vector), rflags: s.rflags & ~0x200n, cs: KERNEL_CS, ss: { ...KERNEL_SS, selector: 0, unusable: 1 } };
  return { event: { kind: "delivered", rip: s.rip, vector, errorCode, source }, after };
}

/** IRETQ from the frame at RSP (no error code). */
export function iret(s: ArchState, at = 0x11100n): { event: EngineEvent; after: ArchState } {
  const q = (i: number) => new DataView(s.memory.get(Number((s.gpr[4]! + 8n * BigInt(i)) >> 12n))!.buffer).getBigUint64(Number((s.gpr[4]! + 8n * BigInt(i)) & 0xfffn), true);
  const after = withGpr({ ...s, rip: q(0), cs: USER_CS, rflags: q(2), ss: USER_SS }, 4, q(3));
  return { event: { kind: "retired", rip: at }, after };
}
