// A trace keeps the mode SYSCALL and SYSRETQ set (CPL, access classes, CS, SS) in locals and stores
// it into the Machine only where something outside the generated code could look
// (impl/engine/trace-transitions.ts, "The mode in the trace's locals"). Each test below runs a
// round trip where the Machine would be seen stale, or the locals would be, if one of the places
// that store or reload the mode were missing; each such place, removed once, makes one of these
// tests (or the ones named in its comment) fail:
//   - the store before a slow-path access (BlockWriter.beforeAccessCall): "a slow-path access";
//   - the store at every exit and before handler calls (BlockWriter.beforeWriteBack): trace.test.ts
//     "form on the round trip and run it as spec/ does" and every test here;
//   - the store before a handler SYSCALL/SYSRETQ falls back to: "a SYSRETQ left to its handler";
//   - the store before INT n / IRETQ: "SYSCALL, INT n and IRETQ in one trace";
//   - the reload after a delivery (INT n) and after IRETQ: "a user read after IRETQ".
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import type { ProfileName } from "../../../contract/profile.ts";
import { Assembler, Code, Register as R, abs, mem, buildGuest, defineLayout, percpuOffset, type LayoutOptions } from "../../../guest/index.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { traceFormed } from "./trace-hooks.ts";

type Section = ReturnType<Assembler["section"]>;

const ROUNDS = 20;
const STEPS = 1200;
/** The stub of `vector` in the shared layout (0xb000 + 16 · vector, one byte in). */
const stub = (vector: number) => 0xb000n + 16n * BigInt(vector) + 1n;
const USER_HANDLER = 0x13000n, KERNEL_HANDLER = 0x13800n;
/** A kernel data page (supervisor only) the kernel reads every round trip (the per-CPU area). */
const PERCPU = 0x30000n;
const USER_DATA = 0x220000n;

interface Extras {
  /** In the SYSCALL entry, after RCX and R11 are pushed. */
  readonly inEntry?: (s: Section) => void;
  /** The entry runs `int 0x81` (a kernel-mode delivery, the handler returning with IRETQ). */
  readonly kernelInt?: boolean;
  /** In the user loop after `int 0x80` returned. */
  readonly afterInt?: (s: Section) => void;
  /** The entry's second half (from `pop r11` on) on another page, reached by a plain `jmp`. */
  readonly entryTail?: bigint;
  readonly options?: LayoutOptions;
}

/**
 * The round trip: user `syscall; int 0x80; inc r12; dec r15; jnz loop; hlt`; the SYSCALL entry
 * switches to the kernel stack through GS (SWAPGS), pushes RCX/R11, (INT 0x81), pops them and
 * returns with SYSRETQ; INT 0x80's handler is `swapgs; swapgs; iretq`, INT 0x81's `inc r14; iretq`.
 */
function guest(x: Extras = {}): ArchState {
  const l = defineLayout({ idt: { userVectors: [0x80], gates: { 0x80: { offset: USER_HANDLER }, 0x81: { offset: KERNEL_HANDLER } } }, ...x.options });
  const a = new Assembler();
  const u = a.section(l.code.user, { name: "user" }).label("loop").emit(Code.Syscall).emit(Code.Int_imm8, 0x80);
  x.afterInt?.(u);
  u.emit(Code.Inc_rm64, R.R12).emit(Code.Dec_rm64, R.R15).emit(Code.Jne_rel8_64, "loop").emit(Code.Hlt);
  const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
  const e = a.section(l.msrs.lstar, { name: "entry" })
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
    .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
    .emit(Code.Push_r64, R.RCX)
    .emit(Code.Push_r64, R.R11);
  x.inEntry?.(e);
  if (x.kernelInt === true) e.emit(Code.Int_imm8, 0x81);
  let tail = e;
  if (x.entryTail !== undefined) {
    e.emit(Code.Jmp_rel32_64, "tail");
    tail = a.section(x.entryTail, { name: "tail" }).label("tail");
  }
  tail.emit(Code.Pop_r64, R.R11).emit(Code.Pop_r64, R.RCX).emit(Code.Mov_r64_rm64, R.RSP, userRsp).emit(Code.Swapgs).emit(Code.Sysretq);
  a.section(USER_HANDLER, { name: "int80" }).emit(Code.Swapgs).emit(Code.Swapgs).emit(Code.Iretq);
  a.section(KERNEL_HANDLER, { name: "int81" }).emit(Code.Inc_rm64, R.R14).emit(Code.Iretq);
  return buildGuest(l, { code: a.assemble(), start: { ring: 3, regs: { r15: BigInt(ROUNDS), r13: 0x100000n } } }).state;
}

/** RAX ← `multiplier` from round trip 16 on (R12 bit 4), 0 before — without a branch. */
function from16(s: Section, multiplier: number): Section {
  return s.emit(Code.Mov_r64_rm64, R.RAX, R.R12).emit(Code.Shr_rm64_imm8, R.RAX, 4).emit(Code.And_rm64_imm8, R.RAX, 1)
    .emit(Code.Imul_r64_rm64_imm32, R.RAX, R.RAX, multiplier);
}

function expectRuns(state: ArchState, profile: ProfileName = "intel") {
  expect(traceFormed(state, 12 * 30)).toBe(true);
  return expectAgreesWithSpec(state, STEPS, profile).state;
}

describe("the mode SYSCALL/SYSRETQ leave in a trace's locals", () => {
  it("is stored before INT n and IRETQ (SYSCALL, INT n and IRETQ in one trace)", () => {
    const s = expectRuns(guest({ kernelInt: true }));
    expect(s.gpr[12]).toBe(BigInt(ROUNDS));
    expect(s.gpr[14]).toBe(BigInt(ROUNDS));
  });

  it("is stored before a slow-path access (a kernel read of a page the TLB lacks, after SYSCALL)", () => {
    // Every round trip reads the next 4 KiB page from 1 MiB on: a TLB miss each time.
    const s = expectRuns(guest({ inEntry: (e) => e.emit(Code.Mov_r64_rm64, R.RAX, mem(R.R13)).emit(Code.Add_rm64_imm32, R.R13, 0x1000) }));
    expect(s.gpr[12]).toBe(BigInt(ROUNDS));
    expect(s.gpr[13]).toBe(0x100000n + 0x1000n * BigInt(ROUNDS));
  });

  it("is loaded again after IRETQ to user mode (a user read after IRETQ of a supervisor page: #PF from round trip 16)", () => {
    // The kernel reads the per-CPU page every round trip (its TLB entry grants supervisor reads).
    const read = (u: Section) => from16(u, Number(PERCPU - USER_DATA)).emit(Code.Mov_r64_rm64, R.RDX, mem(R.RAX, USER_DATA));
    const s = expectRuns(guest({ afterInt: read, kernelInt: true }));
    expect(s.rip).toBe(stub(14));
    expect(s.gpr[12]).toBe(16n);
  });

  it("is stored before a SYSRETQ left to its handler (AMD: a non-canonical RCX faults at the target, in user mode)", () => {
    // From round trip 16 on, the entry sets bit 47 of the saved RCX.
    const bit47 = (e: Section) => from16(e, 1).emit(Code.Shl_rm64_imm8, R.RAX, 47).emit(Code.Or_rm64_r64, mem(R.RSP, 8n), R.RAX);
    for (const profile of ["amd", "intel"] as const) {
      const s = expectRuns(guest({ inEntry: bit47 }), profile);
      expect(s.rip).toBe(stub(13));
      expect(s.gpr[12]).toBe(16n);
    }
  });
});
