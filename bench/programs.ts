// The benchmark guests, assembled with iced-x86 onto the shared layout (bench/layout.ts).
import type { ArchState } from "../contract/state.ts";
import { Code, Instruction, Program, Reg, abs, mem } from "./asm.ts";
import { LSTAR, Memory, USER_CODE, baseMemory, gate, layoutState } from "./layout.ts";

export interface BenchProgram {
  readonly name: string;
  readonly state: ArchState;
  /** Steps (vector README) per iteration / round trip. */
  readonly stepsPerRound: number;
  readonly unit: string;
}

const I = Instruction;

/** Kernel-mode integer loop: add/xor/add/sub/xor/dec/jnz — 7 instructions per iteration. */
export function intLoop(): BenchProgram {
  const memory = baseMemory();
  const p = new Program(0x10000n);
  const loop = p.here();
  p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RAX, Reg.RBX));
  p.add(I.createRegReg(Code.Xor_rm64_r64, Reg.RCX, Reg.RAX));
  p.add(I.createRegReg(Code.Add_rm64_r64, Reg.RDX, Reg.RCX));
  p.add(I.createRegI32(Code.Sub_rm64_imm8, Reg.RBX, 3));
  p.add(I.createRegReg(Code.Xor_rm64_r64, Reg.RDX, Reg.RBX));
  p.add(I.createReg(Code.Dec_rm64, Reg.RSI));
  p.add(I.createBranch(Code.Jne_rel8_64, loop));
  memory.write(0x10000n, p.encode());
  const state = layoutState(memory);
  const gpr = [...state.gpr];
  gpr[6] = 1n << 60n; // RSI: iterations (never reaches 0 in a benchmark)
  return { name: "int-loop", state: { ...state, gpr }, stepsPerRound: 1, unit: "MIPS" };
}

/** User `syscall` + counter loop (9 instructions) and the kernel entry/exit (12): 21 per round trip. */
export function syscallRoundTrip(): BenchProgram {
  const memory = baseMemory();
  const u = new Program(USER_CODE);
  const loop = u.here();
  u.add(I.create(Code.Syscall));
  u.add(I.createReg(Code.Inc_rm64, Reg.R12));
  u.add(I.createRegReg(Code.Add_rm64_r64, Reg.R13, Reg.R12));
  u.add(I.createRegReg(Code.Xor_rm64_r64, Reg.R14, Reg.R13));
  u.add(I.createRegI32(Code.Sub_rm64_imm8, Reg.R15, 1));
  u.add(I.createRegReg(Code.Add_rm64_r64, Reg.RBX, Reg.R12));
  u.add(I.createRegReg(Code.Xor_rm64_r64, Reg.RBP, Reg.RBX));
  u.add(I.createRegI32(Code.Or_rm64_imm8, Reg.RDI, 1));
  u.add(I.createBranch(Code.Jmp_rel8_64, loop));
  memory.write(USER_CODE, u.encode());
  // Kernel: per-CPU area at KERNEL_GS_BASE 0x30000: +8 kernel stack top, +0x10 user RSP slot.
  const k = new Program(LSTAR);
  k.add(I.create(Code.Swapgs));
  k.add(I.createMemReg(Code.Mov_rm64_r64, abs(0x10n, Reg.GS), Reg.RSP));
  k.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RSP, abs(0x8n, Reg.GS)));
  k.add(I.createReg(Code.Push_r64, Reg.RCX));
  k.add(I.createReg(Code.Push_r64, Reg.R11));
  k.add(I.createReg(Code.Push_r64, Reg.RAX));
  k.add(I.createReg(Code.Pop_r64, Reg.RAX));
  k.add(I.createReg(Code.Pop_r64, Reg.R11));
  k.add(I.createReg(Code.Pop_r64, Reg.RCX));
  k.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RSP, abs(0x10n, Reg.GS)));
  k.add(I.create(Code.Swapgs));
  k.add(I.create(Code.Sysretq));
  memory.write(LSTAR, k.encode());
  memory.write64(0x30008n, 0x20000n);
  const state = layoutState(memory, { user: true });
  return { name: "syscall", state: { ...state, kernelGsBase: 0x30000n }, stepsPerRound: 21, unit: "round trips/s" };
}

/** User `int $0x80` through a DPL 3 gate (3 user instructions) and a handler of 15: 18. */
export function interruptRoundTrip(): BenchProgram {
  const memory = baseMemory();
  const handler = 0x13000n;
  const [lo, hi] = gate(handler, { dpl: 3 });
  memory.write64(0x9000n + 16n * 0x80n, lo);
  memory.write64(0x9008n + 16n * 0x80n, hi);
  const u = new Program(USER_CODE);
  const loop = u.here();
  u.add(I.createU32(Code.Int_imm8, 0x80));
  u.add(I.createReg(Code.Inc_rm64, Reg.R12));
  u.add(I.createBranch(Code.Jmp_rel8_64, loop));
  memory.write(USER_CODE, u.encode());
  const regs = [Reg.RAX, Reg.RCX, Reg.RDX, Reg.RSI, Reg.RDI, Reg.R11];
  const h = new Program(handler);
  h.add(I.create(Code.Swapgs));
  for (const r of regs) h.add(I.createReg(Code.Push_r64, r));
  for (const r of [...regs].reverse()) h.add(I.createReg(Code.Pop_r64, r));
  h.add(I.create(Code.Swapgs));
  h.add(I.create(Code.Iretq));
  memory.write(handler, h.encode());
  const state = layoutState(memory, { user: true });
  return { name: "interrupt", state: { ...state, kernelGsBase: 0x30000n }, stepsPerRound: 18, unit: "round trips/s" };
}

/** User load from a not-present page (6 MiB, 4 KiB page table with nothing present); the #PF
 *  handler skips the load (7 instructions); 13 more user instructions: 21 steps per round trip. */
export function pageFaultRoundTrip(): BenchProgram {
  const memory: Memory = baseMemory();
  const handler = 0x14000n;
  const [lo, hi] = gate(handler);
  memory.write64(0x9000n + 16n * 14n, lo);
  memory.write64(0x9008n + 16n * 14n, hi);
  const load = () => I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, abs(0x600000n));
  const one = new Program(0n);
  one.add(load());
  const loadLength = BigInt(one.encode().length);
  const u = new Program(USER_CODE);
  const loop = u.here();
  u.add(load());
  const others = [Reg.RBX, Reg.RCX, Reg.RDX, Reg.RSI, Reg.RDI, Reg.R8, Reg.R9, Reg.R10, Reg.R11, Reg.R12, Reg.R13, Reg.R14];
  for (const r of others) u.add(I.createReg(Code.Inc_rm64, r));
  u.add(I.createBranch(Code.Jmp_rel8_64, loop));
  memory.write(USER_CODE, u.encode());
  const h = new Program(handler);
  h.add(I.createReg(Code.Push_r64, Reg.RAX));
  h.add(I.createRegMem(Code.Mov_r64_rm64, Reg.RAX, mem(Reg.RSP, 16n)));
  h.add(I.createRegI32(Code.Add_rm64_imm8, Reg.RAX, Number(loadLength)));
  h.add(I.createMemReg(Code.Mov_rm64_r64, mem(Reg.RSP, 16n), Reg.RAX));
  h.add(I.createReg(Code.Pop_r64, Reg.RAX));
  h.add(I.createRegI32(Code.Add_rm64_imm8, Reg.RSP, 8));
  h.add(I.create(Code.Iretq));
  memory.write(handler, h.encode());
  const state = layoutState(memory, { user: true });
  return { name: "page-fault", state, stepsPerRound: 21, unit: "round trips/s" };
}

export const PROGRAMS = [intLoop, syscallRoundTrip, interruptRoundTrip, pageFaultRoundTrip];
