// Small guests for the trace model's tests: a SYSCALL loop and an INT 0x80 loop through an IST
// gate, each round trip with SWAPGS on the way in and out (entry_64.S style), built with the guest
// kit so that their symbols name the entry points.
import type { ArchState } from "../../contract/state.ts";
import { Assembler, Code, Register as R, buildGuest, defineLayout } from "../../guest/index.ts";
import { emitSyscallEntry } from "../helpers/syscall-entry.ts";

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
  emitSyscallEntry(a, l, "entry_SYSCALL_64");
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
