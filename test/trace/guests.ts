// Small guests for the trace model's tests: a SYSCALL loop and an INT 0x80 loop through an IST
// gate, each round trip with SWAPGS on the way in and out (entry_64.S style), built with the guest
// kit so that their symbols name the entry points.
import type { ArchState } from "../../contract/state.ts";
import { Assembler, Code, Register as R, abs, buildGuest, defineLayout, percpuOffset } from "../../guest/index.ts";

export interface TestGuest {
  readonly state: ArchState;
  readonly symbols: ReadonlyMap<string, bigint>;
  /** Steps per round trip. */
  readonly stepsPerTrip: number;
}

/** user: syscall; inc %r12; jmp loop — entry: swapgs; save RSP; kernel stack; push/pop; restore; swapgs; sysretq. */
export function syscallLoop(): TestGuest {
  const l = defineLayout({ msrs: { fmask: 0x47700n } });
  const a = new Assembler();
  a.section(l.code.user, { name: "user_loop" })
    .label("loop")
    .emit(Code.Syscall)
    .emit(Code.Inc_rm64, R.R12)
    .emit(Code.Jmp_rel8_64, "loop");
  const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
  a.section(l.msrs.lstar, { name: "entry_SYSCALL_64" })
    .label("entry_SYSCALL_64")
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
    .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
    .emit(Code.Push_r64, R.RCX)
    .emit(Code.Pop_r64, R.RCX)
    .emit(Code.Mov_r64_rm64, R.RSP, userRsp)
    .emit(Code.Swapgs)
    .emit(Code.Sysretq);
  const { state, symbols } = buildGuest(l, { code: a.assemble(), start: { ring: 3 } });
  return { state, symbols, stepsPerTrip: 11 };
}

/** user: int $0x80; jmp loop — gate 0x80 (DPL 3) on IST1: swapgs; swapgs; iretq. */
export function intLoop(): TestGuest {
  const handler = 0x240000n;
  const l = defineLayout({ idt: { userVectors: [0x80], ist: { 0x80: 1 }, gates: { 0x80: { offset: handler } } } });
  const a = new Assembler();
  a.section(l.code.user, { name: "user_loop" }).label("loop").emit(Code.Int_imm8, 0x80).emit(Code.Jmp_rel8_64, "loop");
  a.section(handler, { name: "int80_handler" }).label("int80_handler").emit(Code.Swapgs).emit(Code.Swapgs).emit(Code.Iretq);
  const { state, symbols } = buildGuest(l, { code: a.assemble(), start: { ring: 3 } });
  return { state, symbols, stepsPerTrip: 5 };
}
