// The benchmark guests: small loops assembled with the guest kit onto its shared layout
// (guest/layout.ts). Each loop's instruction count per iteration or round trip is part of its figure.
import type { ArchState } from "../contract/state.ts";
import { Assembler, Code, Register as R, abs, buildGuest, defineLayout, mem, percpuOffset, type LayoutOptions } from "../guest/index.ts";

export interface BenchProgram {
  readonly name: string;
  readonly state: ArchState;
  /** Where the CPU is once the loop has run its iterations (a jump to itself, at the loop's CPL). */
  readonly end: bigint;
  /** Steps (vector README) per iteration / round trip. */
  readonly stepsPerRound: number;
  /** Instructions (steps) per iteration of the loop's counter. */
  readonly stepsPerIteration: number;
  readonly unit: string;
}

/**
 * Where a loop goes when its iterations are done: a jump to itself on a page of its own (QEMU
 * translates one instruction at a time on a page that holds a breakpoint, so the breakpoint that
 * ends a free run must not share a page with the loop).
 */
function endStub(a: Assembler, address: bigint): void {
  a.section(address, { name: "end" }).label("end").emit(Code.Jmp_rel8_64, "end");
}
const KERNEL_END = 0x16000n;
const USER_END = 0x201000n;

/** A loop that never ends within a benchmark (2^60 iterations). */
export const ENDLESS = 1n << 60n;

/** The shared layout with Linux's SYSCALL flag mask (TF, DF, IF, IOPL, NT, AC cleared on entry). */
function layout(options: LayoutOptions = {}) {
  return defineLayout({ ...options, msrs: { fmask: 0x47700n } });
}

/** Kernel-mode integer loop: add/xor/add/sub/xor/dec/jnz — 7 instructions per iteration; RSI
 *  counts the iterations. */
export function intLoop(iterations = ENDLESS): BenchProgram {
  const l = layout();
  const a = new Assembler();
  a.section(l.code.kernel)
    .label("loop")
    .emit(Code.Add_rm64_r64, R.RAX, R.RBX)
    .emit(Code.Xor_rm64_r64, R.RCX, R.RAX)
    .emit(Code.Add_rm64_r64, R.RDX, R.RCX)
    .emit(Code.Sub_rm64_imm8, R.RBX, 3)
    .emit(Code.Xor_rm64_r64, R.RDX, R.RBX)
    .emit(Code.Dec_rm64, R.RSI)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Jmp_rel32_64, "end");
  endStub(a, KERNEL_END);
  const image = a.assemble();
  const { state } = buildGuest(l, { code: image, start: { ring: 0, regs: { rsi: iterations } } });
  return { name: "int-loop", state, end: image.symbol("end"), stepsPerRound: 1, stepsPerIteration: 7, unit: "MIPS" };
}

/** User `syscall` + counter loop (9 instructions) and the kernel entry/exit (12): 21 per round trip;
 *  R15 counts the round trips. */
export function syscallRoundTrip(iterations = ENDLESS): BenchProgram {
  const l = layout();
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Syscall)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Add_rm64_r64, R.R13, R.R12)
    .emit(Code.Xor_rm64_r64, R.R14, R.R13)
    .emit(Code.Add_rm64_r64, R.RBX, R.R12)
    .emit(Code.Xor_rm64_r64, R.RBP, R.RBX)
    .emit(Code.Or_rm64_imm8, R.RDI, 1)
    .emit(Code.Sub_rm64_imm8, R.R15, 1)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Jmp_rel32_64, "end");
  endStub(a, USER_END);
  // Kernel: per-CPU data behind GS after SWAPGS: the user RSP is saved, the kernel stack loaded.
  const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
  a.section(l.msrs.lstar, { name: "syscall_entry" })
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
    .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
    .emit(Code.Push_r64, R.RCX)
    .emit(Code.Push_r64, R.R11)
    .emit(Code.Push_r64, R.RAX)
    .emit(Code.Pop_r64, R.RAX)
    .emit(Code.Pop_r64, R.R11)
    .emit(Code.Pop_r64, R.RCX)
    .emit(Code.Mov_r64_rm64, R.RSP, userRsp)
    .emit(Code.Swapgs)
    .emit(Code.Sysretq);
  const image = a.assemble();
  const { state } = buildGuest(l, { code: image, start: { ring: 3, regs: { r15: iterations } } });
  return { name: "syscall", state, end: image.symbol("end"), stepsPerRound: 21, stepsPerIteration: 21, unit: "round trips/s" };
}

/** User `int $0x80` through a DPL 3 gate (3 user instructions) and a handler of 15: 18; R12 counts
 *  the round trips. */
export function interruptRoundTrip(iterations = ENDLESS): BenchProgram {
  const handler = 0x13000n;
  const l = layout({ idt: { userVectors: [0x80], gates: { 0x80: { offset: handler } } } });
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Int_imm8, 0x80)
    .emit(Code.Dec_rm64, R.R12)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Jmp_rel32_64, "end");
  endStub(a, USER_END);
  const regs = [R.RAX, R.RCX, R.RDX, R.RSI, R.RDI, R.R11];
  const h = a.section(handler, { name: "int80" }).emit(Code.Swapgs);
  for (const r of regs) h.emit(Code.Push_r64, r);
  for (const r of [...regs].reverse()) h.emit(Code.Pop_r64, r);
  h.emit(Code.Swapgs).emit(Code.Iretq);
  const image = a.assemble();
  const { state } = buildGuest(l, { code: image, start: { ring: 3, regs: { r12: iterations } } });
  return { name: "interrupt", state, end: image.symbol("end"), stepsPerRound: 18, stepsPerIteration: 18, unit: "round trips/s" };
}

/** User load from a not-present page (6 MiB: the layout's 4 KiB table there has nothing present);
 *  the #PF handler skips the load (7 instructions); 13 more user instructions: 21 per round trip;
 *  R14 counts the round trips. */
export function pageFaultRoundTrip(iterations = ENDLESS): BenchProgram {
  const handler = 0x14000n;
  const l = layout({ idt: { gates: { 14: { offset: handler } } } });
  const user = new Assembler();
  const u = user.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Mov_r64_rm64, R.RAX, abs(0x600000n))
    .label("after_load");
  for (const r of [R.RBX, R.RCX, R.RDX, R.RSI, R.RDI, R.R8, R.R9, R.R10, R.R11, R.R12, R.R13]) u.emit(Code.Inc_rm64, r);
  u.emit(Code.Dec_rm64, R.R14).emit(Code.Jne_rel8_64, "loop").emit(Code.Jmp_rel32_64, "end");
  endStub(user, USER_END);
  const userImage = user.assemble();
  const loadLength = userImage.symbol("after_load") - userImage.symbol("loop");
  const kernel = new Assembler();
  kernel.section(handler, { name: "page_fault" })
    .emit(Code.Push_r64, R.RAX)
    .emit(Code.Mov_r64_rm64, R.RAX, mem(R.RSP, 16n))
    .emit(Code.Add_rm64_imm8, R.RAX, loadLength)
    .emit(Code.Mov_rm64_r64, mem(R.RSP, 16n), R.RAX)
    .emit(Code.Pop_r64, R.RAX)
    .emit(Code.Add_rm64_imm8, R.RSP, 8)
    .emit(Code.Iretq);
  // No per-CPU data in this loop: KERNEL_GS_BASE stays 0.
  const { state } = buildGuest(l, { code: [userImage, kernel.assemble()], start: { ring: 3, kernelGsBase: 0n, regs: { r14: iterations } } });
  return { name: "page-fault", state, end: userImage.symbol("end"), stepsPerRound: 21, stepsPerIteration: 21, unit: "round trips/s" };
}

/** The four loops, each built for a number of iterations (default: endless). */
export const PROGRAMS: readonly ((iterations?: bigint) => BenchProgram)[] = [intLoop, syscallRoundTrip, interruptRoundTrip, pageFaultRoundTrip];
