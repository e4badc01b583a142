// A trace keeps the mode SYSCALL and SYSRETQ set (CPL, access classes, CS, SS) in locals and stores
// it into the Machine only where something outside the generated code could look
// (impl/engine/trace-transitions.ts, "The mode in the trace's locals"). Each test below runs round
// trips where the Machine would be seen stale, or the locals would be, if one of the places that
// store or reload the mode were missing; each such place, removed once, makes the test named here
// fail (mutation-tested):
//   - the store before a slow-path access (BlockWriter.beforeAccessCall): "a slow-path access";
//   - the store at every exit and before handler calls (BlockWriter.beforeWriteBack): every test
//     here, and trace.test.ts "form on the round trip and run it as spec/ does";
//   - the store before the handler SYSCALL/SYSRETQ fall back to: "a SYSRETQ left to its handler";
//   - the store before INT n, IRETQ and the other transitions: "INT 0x81 in the SYSCALL entry";
//   - the reload after a delivery written out (INT n; a fault's): "INT 0x80 from user mode",
//     "a #PF in user mode";
//   - the reload after INT n's general path (deliver.ts deliverSoft): "a frame across a page end";
//   - the reload after a fault's general delivery (@RL@, BlockWriter.afterReload): "a #PF in user
//     mode ... across a page end";
//   - the reload after IRETQ written out, and after its handler: "a user read after IRETQ";
//   - the fetch guard across pages reading the trace's fetch class: "a page made supervisor-only";
//   - SYSRETQ's CPL check reading the trace's CPL: "SYSRETQ in user mode";
//   - SWAPGS and GS-relative accesses on the GS locals (BlockWriter.swapgs, gsBase), the GS store
//     and reload: "GS accesses in user and kernel mode", "WRGSBASE".
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../../contract/state.ts";
import type { ProfileName } from "../../../contract/profile.ts";
import {
  Assembler, Code, Register as R, abs, mem, buildGuest, defineLayout, identity, percpuOffset, DEFAULT_MAPPINGS, type LayoutOptions,
} from "../../../guest/index.ts";
import { expectAgreesWithSpec } from "../against-spec.ts";
import { traceFormed } from "./trace-hooks.ts";

type Section = ReturnType<Assembler["section"]>;

const ROUNDS = 20;
const STEPS = 1200;
/** The stub of `vector` in the shared layout (0xb000 + 16 · vector, one byte in). */
const stub = (vector: number) => 0xb000n + 16n * BigInt(vector) + 1n;
const USER_HANDLER = 0x13000n, KERNEL_HANDLER = 0x13800n, PF_HANDLER = 0x14000n, GP_HANDLER = 0x14800n;
/** A kernel data page (supervisor only) the kernel reads every round trip (the per-CPU area). */
const PERCPU = 0x30000n;
const USER_DATA = 0x220000n;
/** An RSP0 whose 40-byte frame crosses a page end (0x1ffe8–0x20010): deliveries take the
 *  general path (trace-transitions.ts gateDelivery covers frames in one page). */
const RSP0_ACROSS = 0x20010n;

interface Extras {
  /** The loop starts with SYSCALL (default true). */
  readonly syscall?: boolean;
  /** The loop runs INT 0x80 after SYSCALL (default true); its handler is `swapgs; swapgs; iretq`. */
  readonly int80?: boolean;
  /** In INT 0x80's handler before IRETQ. */
  readonly beforeIret?: (s: Section) => void;
  /** In the SYSCALL entry, after RCX and R11 are pushed. */
  readonly inEntry?: (s: Section) => void;
  /** In the SYSCALL entry, after RCX is popped (before SYSRETQ). */
  readonly beforeSysret?: (s: Section) => void;
  /** The entry runs `int 0x81` (a kernel-mode delivery, the handler returning with IRETQ). */
  readonly kernelInt?: boolean;
  /** In the user loop after INT 0x80 returned. */
  readonly afterInt?: (s: Section) => void;
  /** The loop then loads from a not-present page (#PF; the handler runs SWAPGS twice and skips the load). */
  readonly pageFault?: boolean;
  /** A #GP handler that skips this many bytes of the faulting instruction. */
  readonly gpSkip?: number;
  /** GS's base in user mode (default 0; KERNEL_GS_BASE is the per-CPU area's). */
  readonly gsBase?: bigint;
  readonly options?: LayoutOptions;
}

/**
 * The round trip: user `syscall; int 0x80; inc r12; dec r15; jnz loop; hlt`; the SYSCALL entry
 * switches to the kernel stack through GS (SWAPGS), pushes RCX/R11, (INT 0x81), pops them and
 * returns with SYSRETQ; INT 0x80's handler is `swapgs; swapgs; iretq`, INT 0x81's `inc r14; iretq`.
 */
function guest(x: Extras = {}): ArchState {
  const gates: Record<number, { offset: bigint }> = { 0x80: { offset: USER_HANDLER }, 0x81: { offset: KERNEL_HANDLER } };
  if (x.pageFault === true) gates[14] = { offset: PF_HANDLER };
  if (x.gpSkip !== undefined) gates[13] = { offset: GP_HANDLER };
  const l = defineLayout({ idt: { userVectors: [0x80], gates }, ...x.options });
  const user = new Assembler();
  const u = user.section(l.code.user, { name: "user" }).label("loop");
  if (x.syscall !== false) u.emit(Code.Syscall);
  if (x.int80 !== false) u.emit(Code.Int_imm8, 0x80);
  x.afterInt?.(u);
  if (x.pageFault === true) u.label("load").emit(Code.Mov_r64_rm64, R.RAX, abs(0x600000n)).label("after_load");
  u.emit(Code.Inc_rm64, R.R12).emit(Code.Dec_rm64, R.R15).emit(Code.Jne_rel8_64, "loop").emit(Code.Hlt);
  const userImage = user.assemble();
  const a = new Assembler();
  const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
  const e = a.section(l.msrs.lstar, { name: "entry" })
    .emit(Code.Swapgs)
    .emit(Code.Mov_rm64_r64, userRsp, R.RSP)
    .emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
    .emit(Code.Push_r64, R.RCX)
    .emit(Code.Push_r64, R.R11);
  x.inEntry?.(e);
  if (x.kernelInt === true) e.emit(Code.Int_imm8, 0x81);
  e.emit(Code.Pop_r64, R.R11).emit(Code.Pop_r64, R.RCX);
  x.beforeSysret?.(e);
  e.emit(Code.Mov_r64_rm64, R.RSP, userRsp).emit(Code.Swapgs).emit(Code.Sysretq);
  const h = a.section(USER_HANDLER, { name: "int80" }).emit(Code.Swapgs).emit(Code.Swapgs);
  x.beforeIret?.(h);
  h.emit(Code.Iretq);
  a.section(KERNEL_HANDLER, { name: "int81" }).emit(Code.Inc_rm64, R.R14).emit(Code.Iretq);
  if (x.pageFault === true) {
    const length = userImage.symbol("after_load") - userImage.symbol("load");
    a.section(PF_HANDLER, { name: "pf" }).emit(Code.Swapgs).emit(Code.Swapgs)
      .emit(Code.Add_rm64_imm8, mem(R.RSP, 8n), Number(length)).emit(Code.Add_rm64_imm8, R.RSP, 8).emit(Code.Iretq);
  }
  if (x.gpSkip !== undefined) {
    a.section(GP_HANDLER, { name: "gp" }).emit(Code.Add_rm64_imm8, mem(R.RSP, 8n), x.gpSkip).emit(Code.Add_rm64_imm8, R.RSP, 8)
      .emit(Code.Inc_rm64, R.R14).emit(Code.Iretq);
  }
  const start = { ring: 3 as const, regs: { r15: BigInt(ROUNDS), r13: 0x100000n }, ...(x.gsBase === undefined ? {} : { gsBase: x.gsBase }) };
  return buildGuest(l, { code: [userImage, a.assemble()], start }).state;
}

/** RAX ← `value` (an imm32, sign-extended, its low 4 bits 0) from round trip 16 on (R12 bit 4), 0
 *  before — without a branch, and in instructions compiled natively: an interpreter call (a shift,
 *  IMUL) would store the mode into the Machine and load it again, hiding what these tests look for. */
function from16(s: Section, value: number): Section {
  return s.emit(Code.Mov_r64_rm64, R.RAX, R.R12).emit(Code.And_rm64_imm8, R.RAX, 16).emit(Code.Neg_rm64, R.RAX)
    .emit(Code.And_rm64_imm32, R.RAX, value);
}

/** Forms the trace, then runs against spec/ (lockstep, then every configuration). */
function expectRuns(state: ArchState, profile: ProfileName = "intel"): ArchState {
  expect(traceFormed(state, 12 * 30)).toBe(true);
  return expectAgreesWithSpec(state, STEPS, profile).state;
}

/** From round trip 16 on the user reads the per-CPU page (supervisor only, its TLB entry filled by
 *  the kernel's reads): #PF. */
const readPercpu = (u: Section) => from16(u, Number(PERCPU - USER_DATA)).emit(Code.Mov_r64_rm64, R.RDX, mem(R.RAX, USER_DATA));

describe("the mode SYSCALL/SYSRETQ leave in a trace's locals", () => {
  it("is stored before INT 0x81 in the SYSCALL entry (and IRETQ back to it)", () => {
    const s = expectRuns(guest({ kernelInt: true, int80: false }));
    expect(s.gpr[12]).toBe(BigInt(ROUNDS));
    expect(s.gpr[14]).toBe(BigInt(ROUNDS));
  });

  it("is stored before a slow-path access (a kernel read of a page the TLB lacks, after SYSCALL)", () => {
    // Every round trip reads the next 4 KiB page from 1 MiB on: a TLB miss each time.
    const s = expectRuns(guest({ inEntry: (e) => e.emit(Code.Mov_r64_rm64, R.RAX, mem(R.R13)).emit(Code.Add_rm64_imm32, R.R13, 0x1000) }));
    expect(s.gpr[12]).toBe(BigInt(ROUNDS));
    expect(s.gpr[13]).toBe(0x100000n + 0x1000n * BigInt(ROUNDS));
  });

  it("is stored before a SYSRETQ left to its handler (AMD: a non-canonical RCX faults at the target, in user mode)", () => {
    // From round trip 16 on, the entry sets bit 47 of RCX (registers only: no call into the Machine before SYSRETQ).
    const bit47 = (e: Section) => from16(e, -16).emit(Code.Mov_r64_imm64, R.RDX, 1n << 47n).emit(Code.And_rm64_r64, R.RDX, R.RAX)
      .emit(Code.Or_rm64_r64, R.RCX, R.RDX);
    // (The trace runs it through its handler from round trip 16 on; the Machine lacks the mode SYSCALL set until then.)
    for (const profile of ["amd", "intel"] as const) {
      const s = expectRuns(guest({ beforeSysret: bit47, int80: false }), profile);
      expect(s.rip).toBe(stub(13));
      expect(s.gpr[12]).toBe(16n);
    }
  });

  it("keeps GS's base in locals that WRGSBASE in the entry (a call into the Machine) updates", () => {
    // The entry points GS 0x800 higher (WRGSBASE: an interpreter call inside the block), reads
    // gs:[8] there into RBX's sum, and points it back.
    const moved = (e: Section) => e.emit(Code.Mov_rm64_imm32, abs(PERCPU + 0x808n), 0x1234).emit(Code.Mov_r64_imm64, R.RDX, PERCPU + 0x800n)
      .emit(Code.Wrgsbase_r64, R.RDX).emit(Code.Add_r64_rm64, R.RBX, abs(8n, R.GS)).emit(Code.Mov_r64_imm64, R.RDX, PERCPU)
      .emit(Code.Wrgsbase_r64, R.RDX);
    const s = expectRuns(guest({ inEntry: moved, int80: false, options: { control: { cr4: 0x620n | (1n << 16n) } } }));
    expect(s.gpr[3]).toBe(0x1234n * BigInt(ROUNDS));
  });

  it("keeps GS's base in locals that user-mode GS accesses read after SYSRETQ and kernel ones after SWAPGS", () => {
    // User GS is the user data page, where the user stores 0x55 at 8 and adds gs:[8] to RBX; the
    // kernel reads a page the TLB lacks every round trip (a call into the Machine: the mode and GS
    // are stored in kernel mode), and its gs:[8] is the kernel stack pointer.
    const user = (u: Section) => u.emit(Code.Mov_rm64_imm32, abs(USER_DATA + 8n), 0x55).emit(Code.Add_r64_rm64, R.RBX, abs(8n, R.GS));
    const s = expectRuns(guest({ int80: false, gsBase: USER_DATA, afterInt: user, inEntry: (e) => e.emit(Code.Mov_r64_rm64, R.RAX, mem(R.R13)).emit(Code.Add_rm64_imm32, R.R13, 0x1000) }));
    expect(s.gpr[3]).toBe(0x55n * BigInt(ROUNDS));
  });

  it("gives SYSRETQ's CPL check the trace's CPL (SYSRETQ in user mode after SYSRETQ: #GP every round trip)", () => {
    // The kernel reads a page the TLB lacks every round trip: the mode is stored in kernel mode.
    const s = expectRuns(guest({
      int80: false, gpSkip: 3, afterInt: (u) => u.emit(Code.Sysretq),
      inEntry: (e) => e.emit(Code.Mov_r64_rm64, R.RAX, mem(R.R13)).emit(Code.Add_rm64_imm32, R.R13, 0x1000),
    }));
    expect(s.gpr[12]).toBe(BigInt(ROUNDS));
    // (One #GP more: the loop's final HLT, at CPL 3.)
    expect(s.gpr[14]).toBe(BigInt(ROUNDS + 1));
  });

  it("is loaded again after INT 0x80 from user mode (its handler's SWAPGS at CPL 0)", () => {
    expect(expectRuns(guest()).gpr[12]).toBe(BigInt(ROUNDS));
  });

  it("is loaded again after INT 0x80 from user mode through a frame across a page end (deliverSoft)", () => {
    expect(expectRuns(guest({ options: { tss: { rsp0: RSP0_ACROSS } } })).gpr[12]).toBe(BigInt(ROUNDS));
  });

  for (const [name, rsp0] of [["", undefined], [" across a page end (the general delivery)", RSP0_ACROSS]] as const) {
    it(`is loaded again after a #PF in user mode delivered${name} (its handler's SWAPGS at CPL 0)`, () => {
      const options = rsp0 === undefined ? {} : { tss: { rsp0 } };
      expect(expectRuns(guest({ int80: false, pageFault: true, options })).gpr[12]).toBe(BigInt(ROUNDS));
    });
  }

  it("is loaded again after IRETQ to user mode (a user read after IRETQ of a supervisor page: #PF from round trip 16)", () => {
    const s = expectRuns(guest({ afterInt: readPercpu }));
    expect(s.rip).toBe(stub(14));
    expect(s.gpr[12]).toBe(16n);
  });

  it("is loaded again after IRETQ to user mode through its handler (a frame at an RSP that is not 8-byte aligned)", () => {
    // The handler moves the frame 4 bytes down (lowest qword first: the copies do not overlap
    // what is still to be read) and RSP with it.
    const misalign = (h: Section) => {
      for (let k = 0; k < 5; k++) h.emit(Code.Mov_r64_rm64, R.RDX, mem(R.RSP, BigInt(8 * k))).emit(Code.Mov_rm64_r64, mem(R.RSP, BigInt(8 * k - 4)), R.RDX);
      h.emit(Code.Sub_rm64_imm8, R.RSP, 4);
    };
    const s = expectRuns(guest({ afterInt: readPercpu, beforeIret: misalign }));
    expect(s.rip).toBe(stub(14));
    expect(s.gpr[12]).toBe(16n);
  });

  it("gives the fetch guard across pages the trace's fetch class (a user jump to a page made supervisor-only: #PF)", () => {
    // User: `syscall; jmp P` with P (6 MiB, its own 4 KiB user page) `inc r12; dec r15; jnz loop`.
    // On round trip 16 the entry clears P's U bit, calls a RET on P (its TLB entry now grants the
    // kernel's fetches, not the user's) and returns elsewhere (so the user's next jump to P is inside the
    // trace, after SYSRETQ); every round trip it also reads a page the TLB lacks (the mode is stored
    // in kernel mode: the Machine's fetch class is the kernel's while the trace runs in user mode).
    const P = 0x601000n;
    const mappings = [...DEFAULT_MAPPINGS.slice(0, 3), identity(P, 0x1000n, "4K", true)];
    const l = defineLayout({ paging: { mappings } });
    const userCode = (a: Assembler) => {
      a.section(l.code.user, { name: "user" }).label("loop").emit(Code.Syscall).emit(Code.Jmp_rel32_64, "p")
        // (An indirect jump back: a direct one would be followed into the block, SYSCALL with it,
        // and the trace, headed by the SYSCALL's own block, not entered again.)
        .label("alt").emit(Code.Inc_rm64, R.R12).emit(Code.Mov_r64_imm64, R.RAX, l.code.user).emit(Code.Jmp_rm64, R.RAX);
      a.section(P, { name: "p" }).label("p").emit(Code.Inc_rm64, R.R12).emit(Code.Dec_rm64, R.R15).emit(Code.Jne_rel32_64, "loop").emit(Code.Hlt)
        .label("p_ret").emit(Code.Retnq);
      return a;
    };
    const probe = buildGuest(l, { code: userCode(new Assembler()).assemble(), start: { ring: 3 } });
    const pte = entryAddress(probe.state, P);
    const alt = probe.symbols.get("alt")!;
    const a = userCode(new Assembler());
    const userRsp = abs(percpuOffset(l, "userRsp"), R.GS);
    a.section(l.msrs.lstar, { name: "entry" })
      .emit(Code.Swapgs).emit(Code.Mov_rm64_r64, userRsp, R.RSP).emit(Code.Mov_r64_rm64, R.RSP, abs(percpuOffset(l, "kernelStack"), R.GS))
      .emit(Code.Push_r64, R.RCX).emit(Code.Push_r64, R.R11)
      .emit(Code.Mov_r64_rm64, R.RAX, mem(R.R13)).emit(Code.Add_rm64_imm32, R.R13, 0x1000)
      .emit(Code.Cmp_rm64_imm8, R.R12, 16).emit(Code.Je_rel32_64, "modify")
      .label("back").emit(Code.Pop_r64, R.R11).emit(Code.Pop_r64, R.RCX).emit(Code.Mov_r64_rm64, R.RSP, userRsp).emit(Code.Swapgs).emit(Code.Sysretq)
      // U cleared, P read by the kernel, the saved RCX pointed at `alt`.
      .label("modify").emit(Code.And_rm64_imm8, abs(pte), -5).emit(Code.Call_rel32_64, "p_ret")
      .emit(Code.Mov_r64_imm64, R.RAX, alt).emit(Code.Mov_rm64_r64, mem(R.RSP, 8n), R.RAX).emit(Code.Jmp_rel32_64, "back");
    const state = buildGuest(l, { code: a.assemble(), start: { ring: 3, regs: { r15: BigInt(ROUNDS), r13: 0x100000n } } }).state;
    const s = expectRuns(state);
    expect(s.rip).toBe(stub(14));
    expect(s.gpr[12]).toBe(17n);
  });
});

/** The physical address of the page-table entry mapping `linear` (4 KiB) in `state`'s paging. */
function entryAddress(state: ArchState, linear: bigint): bigint {
  const qword = (address: bigint) => {
    const page = state.memory.get(Number(address >> 12n));
    let v = 0n;
    for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(page?.[Number(address & 0xfffn) + k] ?? 0);
    return v;
  };
  let table = state.cr3 & ~0xfffn;
  for (const shift of [39n, 30n, 21n]) table = qword(table + ((linear >> shift) & 511n) * 8n) & 0x000ffffffffff000n;
  return table + ((linear >> 12n) & 511n) * 8n;
}
