// The interpreter's dispatch table: one handler per decoded operation.
import type { Machine } from "./machine.ts";
import * as I from "./insn.ts";
import type { Insn } from "./insn.ts";
import {
  execAluRmI, execAluRmR, execAluRRm, execBt, execCall, execCallRm, execCbw, execCwd, execDiv, execFlagOp,
  execImul, execIncDec, execJcc, execJmp, execJmpRm, execLea, execMovRI, execMovRmI, execMovRmR, execMovRRm,
  execMovzxsx, execMul1, execNegNot, execPopR, execPopRm, execPushI, execPushR, execPushRm, execRet, execShift,
  execTestRmI, execTestRmR, execXchg, execLeave,
} from "./exec.ts";
import {
  execCacheOp, execCli, execClts, execHlt, execInOut, execInt1, execInt3, execIntN, execInto, execInvlpg, execIret,
  execJmpFar, execLoadTable, execLtr, execMovFromCr, execMovFromSreg, execMovToCr, execMovToSreg, execPopf,
  execPopSreg, execPushf, execPushSreg, execRdmsr, execRetf, execStacClac, execSti, execStoreTable,
  execSwapgs, execSyscall, execSysenter, execSysexit, execSysret, execWrmsr,
} from "./system.ts";
import {
  execInvpcid, execLldt, execLmsw, execMovFromDr, execMovToDr, execRdFsGsBase, execRdpmc, execRdtsc, execSldtStr, execSmsw,
  execVerrVerw, execWrFsGsBase, execXgetbv, execXsetbv,
} from "./privileged.ts";
import { GP, ST_FAULT, ST_OK, ST_UNSUP, UD } from "./consts.ts";
import { execCmovcc, execJrcxz, execLoop, execSetcc } from "./conditional.ts";
import { execCmpxchg, execCmpxchgWide, execXadd } from "./atomic.ts";
import { execBitScan, execBswap } from "./bit-scan.ts";
import { execString } from "./strings.ts";
import { execCpuid } from "./cpuid.ts";

export type Handler = (m: Machine, i: Insn) => number;

const unsupported: Handler = (m, i) => {
  m.unsupportedReason = i.reason;
  return ST_UNSUP;
};

export const HANDLERS: Handler[] = new Array<Handler>(I.OP_COUNT).fill(unsupported);

const set = (op: number, h: Handler) => {
  HANDLERS[op] = h;
};

set(I.OP_UD, (m) => {
  m.raise(UD, -1);
  return ST_FAULT;
});
set(I.OP_GP0, (m) => {
  m.raise(GP, 0);
  return ST_FAULT;
});
set(I.OP_ALU_RM_R, execAluRmR);
set(I.OP_ALU_R_RM, execAluRRm);
set(I.OP_ALU_RM_I, execAluRmI);
set(I.OP_TEST_RM_R, execTestRmR);
set(I.OP_TEST_RM_I, execTestRmI);
set(I.OP_MOV_RM_R, execMovRmR);
set(I.OP_MOV_R_RM, execMovRRm);
set(I.OP_MOV_RM_I, execMovRmI);
set(I.OP_MOV_R_I, execMovRI);
set(I.OP_MOVZX, (m, i) => execMovzxsx(m, i, false));
set(I.OP_MOVSX, (m, i) => execMovzxsx(m, i, true));
set(I.OP_LEA, execLea);
set(I.OP_XCHG, execXchg);
set(I.OP_PUSH_R, execPushR);
set(I.OP_PUSH_I, execPushI);
set(I.OP_PUSH_RM, execPushRm);
set(I.OP_POP_R, execPopR);
set(I.OP_POP_RM, execPopRm);
set(I.OP_PUSHF, execPushf);
set(I.OP_POPF, execPopf);
set(I.OP_CBW, execCbw);
set(I.OP_CWD, execCwd);
set(I.OP_INC, (m, i) => execIncDec(m, i, false));
set(I.OP_DEC, (m, i) => execIncDec(m, i, true));
set(I.OP_NEG, (m, i) => execNegNot(m, i, true));
set(I.OP_NOT, (m, i) => execNegNot(m, i, false));
set(I.OP_SHIFT, execShift);
set(I.OP_MUL, (m, i) => execMul1(m, i, false));
set(I.OP_IMUL1, (m, i) => execMul1(m, i, true));
set(I.OP_DIV, (m, i) => execDiv(m, i, false));
set(I.OP_IDIV, (m, i) => execDiv(m, i, true));
set(I.OP_IMUL2, (m, i) => execImul(m, i, false));
set(I.OP_IMUL3, (m, i) => execImul(m, i, true));
set(I.OP_BT, execBt);
set(I.OP_JMP, execJmp);
set(I.OP_JCC, execJcc);
set(I.OP_CALL, execCall);
set(I.OP_CALL_RM, execCallRm);
set(I.OP_JMP_RM, execJmpRm);
set(I.OP_RET, execRet);
set(I.OP_RETF, execRetf);
set(I.OP_JMPF, execJmpFar);
set(I.OP_NOP, () => ST_OK);
set(I.OP_CLC, (m) => execFlagOp(m, "clc"));
set(I.OP_STC, (m) => execFlagOp(m, "stc"));
set(I.OP_CMC, (m) => execFlagOp(m, "cmc"));
set(I.OP_CLD, (m) => execFlagOp(m, "cld"));
set(I.OP_STD, (m) => execFlagOp(m, "std"));
set(I.OP_CLI, execCli);
set(I.OP_STI, execSti);
set(I.OP_HLT, execHlt);
set(I.OP_IN, (m, i) => execInOut(m, i, false));
set(I.OP_OUT, (m, i) => execInOut(m, i, true));
set(I.OP_INT, execIntN);
set(I.OP_INT3, execInt3);
set(I.OP_INT1, execInt1);
set(I.OP_INTO, execInto);
set(I.OP_IRET, execIret);
set(I.OP_SYSCALL, execSyscall);
set(I.OP_SYSRET, execSysret);
set(I.OP_SWAPGS, execSwapgs);
set(I.OP_RDMSR, execRdmsr);
set(I.OP_WRMSR, execWrmsr);
set(I.OP_MOV_FROM_CR, execMovFromCr);
set(I.OP_MOV_TO_CR, execMovToCr);
set(I.OP_LGDT, (m, i) => execLoadTable(m, i, false));
set(I.OP_LIDT, (m, i) => execLoadTable(m, i, true));
set(I.OP_SGDT, (m, i) => execStoreTable(m, i, false));
set(I.OP_SIDT, (m, i) => execStoreTable(m, i, true));
set(I.OP_LTR, execLtr);
set(I.OP_MOV_TO_SREG, execMovToSreg);
set(I.OP_MOV_FROM_SREG, execMovFromSreg);
set(I.OP_PUSH_SREG, execPushSreg);
set(I.OP_POP_SREG, execPopSreg);
set(I.OP_STAC, (m) => execStacClac(m, true));
set(I.OP_CLAC, (m) => execStacClac(m, false));
set(I.OP_CLTS, execClts);
set(I.OP_WBINVD, execCacheOp);
set(I.OP_INVD, execCacheOp);
set(I.OP_INVLPG, execInvlpg);
set(I.OP_RDTSC, (m, i) => execRdtsc(m, i, false));
set(I.OP_SYSEXIT, execSysexit);
set(I.OP_SLDT_STR, execSldtStr);
set(I.OP_LLDT, execLldt);
set(I.OP_VERR_VERW, execVerrVerw);
set(I.OP_SMSW, execSmsw);
set(I.OP_LMSW, execLmsw);
set(I.OP_MOV_FROM_DR, execMovFromDr);
set(I.OP_MOV_TO_DR, execMovToDr);
set(I.OP_SYSENTER, execSysenter);
set(I.OP_RDTSCP, (m, i) => execRdtsc(m, i, true));
set(I.OP_RDPMC, execRdpmc);
set(I.OP_XGETBV, execXgetbv);
set(I.OP_XSETBV, execXsetbv);
set(I.OP_RDFSGSBASE, execRdFsGsBase);
set(I.OP_WRFSGSBASE, execWrFsGsBase);
set(I.OP_INVPCID, execInvpcid);
set(I.OP_SETCC, execSetcc);
set(I.OP_CMOVCC, execCmovcc);
set(I.OP_CMPXCHG, execCmpxchg);
set(I.OP_XADD, execXadd);
set(I.OP_CMPXCHG_WIDE, execCmpxchgWide);
set(I.OP_MOVS, execString);
set(I.OP_STOS, execString);
set(I.OP_LODS, execString);
set(I.OP_CMPS, execString);
set(I.OP_SCAS, execString);
set(I.OP_LEAVE, execLeave);
set(I.OP_LOOP, execLoop);
set(I.OP_JRCXZ, execJrcxz);
set(I.OP_BSF, (m, i) => execBitScan(m, i, false));
set(I.OP_BSR, (m, i) => execBitScan(m, i, true));
set(I.OP_BSWAP, execBswap);
set(I.OP_CPUID, execCpuid);
