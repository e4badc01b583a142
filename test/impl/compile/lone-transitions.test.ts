// Blocks of one transition instruction (a SYSCALL, SYSRET, INT n or IRETQ at a block's start: a
// loop that begins with it, a handler that is only an IRETQ) are compiled to their handler call,
// and run exactly as the interpreter and the uncached reference run them — across round trips,
// with a fault on the way (SYSCALL with EFER.SCE = 0: #UD), and with TF set (the block is then
// not used at all).
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import { ImplEngine } from "../../../impl/engine.ts";
import { Assembler, Code, Register as R, abs, buildGuest, defineLayout, percpuOffset } from "../../../guest/index.ts";
import { CONFIGS, runOn } from "../helpers.ts";

/** A user loop beginning with SYSCALL (the entry returns with SYSRETQ; the loop closes with a
 *  conditional branch, which a block does not follow) and an INT 0x80 whose handler is a lone
 *  IRETQ. */
function loops(): ArchState {
  const l = defineLayout({ msrs: { fmask: 0x47700n }, idt: { userVectors: [0x80], gates: { 0x80: { offset: 0x13000n } } } });
  const a = new Assembler();
  a.section(l.code.user, { name: "user" })
    .label("loop")
    .emit(Code.Syscall)
    .emit(Code.Inc_rm64, R.R12)
    .label("int")
    .emit(Code.Int_imm8, 0x80)
    .emit(Code.Add_rm64_r64, R.R13, R.R12)
    .emit(Code.Dec_rm64, R.R15)
    .emit(Code.Jne_rel8_64, "loop")
    .emit(Code.Hlt);
  const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
  a.section(l.msrs.lstar, { name: "entry" })
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
    .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
    .emit(Code.Mov_r64_rm64, R.RSP, userRsp)
    .emit(Code.Swapgs)
    .emit(Code.Sysretq);
  a.section(0x13000n, { name: "int80" }).emit(Code.Iretq);
  return buildGuest(l, { code: a.assemble(), start: { ring: 3, regs: { r15: 1n << 40n } } }).state;
}

describe("blocks of one transition instruction", () => {
  it("are compiled", () => {
    const e = new ImplEngine();
    e.load(loops(), "intel");
    e.run(2000);
    const lone = [...e.machine.blocksBySlot].flatMap((map) => (map === undefined ? [] : [...map.values()])).filter((b) => b.insns.length === 1);
    // The SYSCALL at the loop's start and the IRETQ handler (INT 0x80 ends the INC's block).
    expect(lone).toHaveLength(2);
    for (const b of lone) expect(b.compiled).not.toBeNull();
  });

  it("run as the interpreter and the uncached reference run them, also when SYSCALL faults or TF is set", () => {
    const state = loops();
    const variants: ArchState[] = [
      state,
      // EFER.SCE = 0: the SYSCALL raises #UD (the layout's #UD stub halts).
      { ...state, efer: state.efer & ~1n },
      // TF = 1: every instruction traps (#DB to the layout's stub).
      { ...state, rflags: state.rflags | 0x100n },
    ];
    for (const s of variants) {
      for (const steps of [1, 2, 7, 50, 1001]) {
        const outs = CONFIGS.map((c) => runOn(s, steps, c.opts));
        for (const o of outs.slice(1)) {
          expect(o.stop).toEqual(outs[0]!.stop);
          expect(o.text).toBe(outs[0]!.text);
        }
      }
    }
  });
});
