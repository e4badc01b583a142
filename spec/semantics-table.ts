// THE table from instruction to semantics: every mnemonic the decoder can produce
// (spec/decode/instruction.ts, `Mnemonic`) names the function that executes it. The type makes a
// missing or misspelt entry a compile error; the fetch looks the instruction up here and nowhere
// else (spec/step/fetch.ts, once per instruction it keeps), and the step runs what it found.
// Each function is checks, then updates, on the step's transaction (spec/transaction/). A new
// instruction is a decoder case, a line here, and its file.
import type { Mnemonic } from "./decode/instruction.ts";
import type { Semantics } from "./transaction/semantics.ts";
// The general instructions (instructions/): one function per mnemonic, named after it.
import { adc, add, and, cmp, dec, inc, neg, not, or, sbb, sub, test, xor } from "./instructions/alu.ts";
import { bt, btc, btr, bts } from "./instructions/bit-test.ts";
import { bsf, bsr, bswap } from "./instructions/bit-scan.ts";
import { cmpxchg, cmpxchg8b, cmpxchg16b, xadd } from "./instructions/compare-exchange.ts";
import { cmovcc, setcc } from "./instructions/conditional.ts";
import { call, jcc, jmp, jrcxz, loop, loope, loopne, ret } from "./instructions/control-flow.ts";
import { cpuid } from "./instructions/cpuid.ts";
import { cbw, cwd, lea, mov, movsx, movsxd, movzx, xchg } from "./instructions/data-movement.ts";
import { clc, cld, cmc, stc, std } from "./instructions/flag-control.ts";
import { endbr, fence, nop, pause, prefetch, ud2 } from "./instructions/misc.ts";
import { div, idiv, imul, mul } from "./instructions/multiply-divide.ts";
import { execIn, execOut } from "./instructions/port-io.ts";
import { rcl, rcr, rol, ror, sar, shl, shr } from "./instructions/shift.ts";
import { leave, pop, popf, push, pushf } from "./instructions/stack.ts";
import { cmps, lods, movs, scas, stos } from "./instructions/string.ts";
// The privilege transitions and system instructions (transitions/): one file per SDM page or family.
import { execClts, execLmsw, execMovFromCr, execMovToCr, execSmsw } from "./transitions/control-registers.ts";
import { execMovFromDr, execMovToDr } from "./transitions/debug-registers.ts";
import { execLgdt, execLidt, execLldt, execLtr, execSgdt, execSidt, execSldt, execStr } from "./transitions/descriptor-tables.ts";
import { execJmpFar } from "./transitions/far-jump.ts";
import { execRetf } from "./transitions/far-return.ts";
import { execHlt } from "./transitions/halt.ts";
import { execCli, execSti } from "./transitions/interrupt-flag.ts";
import { execIret } from "./transitions/iret.ts";
import { execRdmsr, execWrmsr } from "./transitions/msr.ts";
import { execRdfsbase, execRdgsbase, execWrfsbase, execWrgsbase } from "./transitions/fsgsbase.ts";
import { execInvpcid } from "./transitions/invpcid.ts";
import { execCache, execInvlpg, execRdpmc, execRdtsc, execRdtscp, execXgetbv, execXsetbv } from "./transitions/privileged.ts";
import { execMovFromSreg, execMovToSreg, execPopSreg, execPushSreg } from "./transitions/segment-load.ts";
import { execClac, execStac } from "./transitions/smap-flags.ts";
import { execInt, execInt1, execInt3, execInto } from "./transitions/software-interrupt.ts";
import { execVerr, execVerw } from "./transitions/segment-verify.ts";
import { execSwapgs } from "./transitions/swapgs.ts";
import { execSysenter, execSysexit } from "./transitions/sysenter.ts";
import { execSyscall } from "./transitions/syscall.ts";
import { execSysret } from "./transitions/sysret.ts";

export const SEMANTICS: { readonly [M in Mnemonic]: Semantics } = {
  // ---- data movement: instructions/data-movement.ts, stack.ts ----
  mov, movzx, movsx, movsxd, lea, xchg, cbw, cwd, bswap,
  push, pop, pushf, popf, leave,
  // ---- conditional moves and sets: conditional.ts; atomics: compare-exchange.ts ----
  setcc, cmovcc,
  cmpxchg, xadd, cmpxchg8b, cmpxchg16b,
  // ---- strings, one iteration a step: string.ts ----
  movs, stos, lods, cmps, scas,
  // ---- arithmetic and logic: alu.ts, shift.ts, multiply-divide.ts, bit-test.ts, bit-scan.ts ----
  add, adc, sub, sbb, and, or, xor, cmp, test, inc, dec, neg, not,
  rol, ror, rcl, rcr, shl, shr, sar,
  mul, imul, div, idiv,
  bt, bts, btr, btc, bsf, bsr,
  // ---- near control flow: control-flow.ts ----
  jmp, jcc, call, ret, loop, loope, loopne, jrcxz,
  // ---- flags, port I/O, CPUID, the rest: flag-control.ts, port-io.ts, cpuid.ts, misc.ts ----
  cld, std, clc, stc, cmc,
  in: execIn,
  out: execOut,
  cpuid,
  nop, pause, ud2, prefetch, endbr,
  lfence: fence, mfence: fence, sfence: fence,

  // ---- privilege transitions: transitions/ ----
  syscall: execSyscall, //        syscall.ts
  sysret: execSysret, //          sysret.ts
  sysenter: execSysenter, //      sysenter.ts
  sysexit: execSysexit,
  swapgs: execSwapgs, //          swapgs.ts
  iret: execIret, //              iret.ts
  int: execInt, //                software-interrupt.ts; delivery is deliver.ts, via the step
  int3: execInt3,
  int1: execInt1,
  into: execInto,
  retf: execRetf, //              far-return.ts
  jmp_far: execJmpFar, //         far-jump.ts
  // ---- system state: transitions/ ----
  cli: execCli, //                interrupt-flag.ts
  sti: execSti,
  hlt: execHlt, //                halt.ts
  rdmsr: execRdmsr, //            msr.ts
  wrmsr: execWrmsr,
  rdtsc: execRdtsc, //            privileged.ts: the TSC reads 0, no counters, XCR0 = 1
  rdtscp: execRdtscp,
  rdpmc: execRdpmc,
  xgetbv: execXgetbv,
  xsetbv: execXsetbv,
  mov_from_cr: execMovFromCr, //  control-registers.ts
  mov_to_cr: execMovToCr,
  clts: execClts,
  smsw: execSmsw,
  lmsw: execLmsw,
  mov_from_dr: execMovFromDr, //  debug-registers.ts
  mov_to_dr: execMovToDr,
  lgdt: execLgdt, //              descriptor-tables.ts
  lidt: execLidt,
  sgdt: execSgdt,
  sidt: execSidt,
  ltr: execLtr,
  lldt: execLldt,
  sldt: execSldt,
  str: execStr,
  verr: execVerr, //              segment-verify.ts
  verw: execVerw,
  rdfsbase: execRdfsbase, //      fsgsbase.ts
  rdgsbase: execRdgsbase,
  wrfsbase: execWrfsbase,
  wrgsbase: execWrgsbase,
  mov_to_sreg: execMovToSreg, //  segment-load.ts
  mov_from_sreg: execMovFromSreg,
  push_sreg: execPushSreg,
  pop_sreg: execPopSreg,
  stac: execStac, //              smap-flags.ts
  clac: execClac,
  wbinvd: execCache, //           privileged.ts: no caches, TLB or TSC are modelled
  wbnoinvd: execCache,
  invd: execCache,
  invlpg: execInvlpg,
  invpcid: execInvpcid, //        invpcid.ts
};
