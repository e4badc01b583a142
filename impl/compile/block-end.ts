// How a compiled block ends: its last instruction when that is a near branch (the exits, and the
// loop back to the block's start while the budget allows a whole iteration), a system instruction
// run through its interpreter handler (terminalCall), INT n / INT3 delivered by the block
// (softInt), or an instruction left to the engine (stopBefore, ST_STOP); and instructions in the
// middle of a block that have no native translation (fallback: the interpreter handler).
import * as I from "../insn.ts";
import * as constsModule from "../consts.ts";
import {
  type BlockWriter, ST_SOFT_DELIVERED, ST_STOP, exitAfter, flagStore, gpFaultExit, lit, regHi, regLo, retired, stopBefore,
} from "./writer.ts";
import { cond, flagsLiveAtHead } from "./flags.ts";
import { RELOAD, load, readRm, store } from "./memory-operands.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BP, RIP_HI, RIP_LO, SHADOW_NONE, SS, ST_END, ST_FAULT, ST_HALT, ST_UNSUP, TF } = constsModule;

/** The block's last instruction when it is a near branch; emits the exits. */
export function emitBranch(w: BlockWriter, k: number): void {
  const i = w.b.insns[k]!;
  const o = w.out;
  const canon = (hi: number) => hi >> 15 === hi >> 31;
  const go = (lo: string, hi: string) => exitAfter(w, k, lo, hi);
  switch (i.op) {
    case I.OP_JMP:
      if (!canon(i.targetHi)) {
        o.push(gpFaultExit(w, k));
        return;
      }
      if (w.loop) o.push(`if (left !== 0) { ${flagsLiveAtHead(w) ? flagStore(w) : ""} left = (left - 1) | 0; continue; }`);
      o.push(go(lit(i.targetLo), lit(i.targetHi)));
      return;
    case I.OP_JCC: {
      const [pre, c] = cond(w, i.sub);
      o.push(pre);
      if (w.loop) {
        // The back edge as one test of (taken && iterations left), the exits after it: V8 then
        // keeps the loop tight (a nested test on the back edge cost a sixth of the int loop's speed).
        const store = flagsLiveAtHead(w) ? flagStore(w) : "";
        o.push(`const taken = ${c}; if (taken && left !== 0) { ${store} left = (left - 1) | 0; continue; }`);
        o.push(`if (taken) ${go(lit(i.targetLo), lit(i.targetHi))}`);
      } else {
        o.push(`if (${c}) ${!canon(i.targetHi) ? gpFaultExit(w, k) : go(lit(i.targetLo), lit(i.targetHi))}`);
      }
      o.push(go(lit(i.nextLo), lit(i.nextHi)));
      return;
    }
    case I.OP_CALL: case I.OP_CALL_RM: {
      if (i.operandSize !== 8) break;
      let tgt: string;
      if (i.op === I.OP_CALL) {
        if (!canon(i.targetHi)) {
          o.push(gpFaultExit(w, k));
          return;
        }
        tgt = `const tl = ${lit(i.targetLo)}, th = ${lit(i.targetHi)};`;
      } else {
        tgt = `${readRm(w, i, k, 8)} const tl = vl, th = vh; if ((th >> 15) !== (th >> 31)) ${gpFaultExit(w, k)}`;
      }
      const sl = regLo(w, 4), sh = regHi(w, 4);
      w.written.add(4);
      o.push(`{ ${tgt} const nl = (${sl} - 8) | 0, nh = (${sh} - ((${sl} >>> 0) < 8 ? 1 : 0)) | 0;` +
        ` ${store(w, SS, 8, "nl", "nh", lit(i.nextLo), lit(i.nextHi), k)}` +
        ` ${sl} = nl; ${sh} = nh; ${go("tl", "th")} }`);
      return;
    }
    case I.OP_RET: {
      if (i.operandSize !== 8) break;
      const sl = regLo(w, 4), sh = regHi(w, 4);
      w.written.add(4);
      const rel = 8 + i.immLo;
      o.push(`{ ${load(w, SS, 8, sl, sh, k)} const tl = vl, th = vh;` +
        ` if ((th >> 15) !== (th >> 31)) ${gpFaultExit(w, k)}` +
        ` const nl = (${sl} + ${rel}) | 0; ${sh} = (${sh} + ((nl >>> 0) < (${sl} >>> 0) ? 1 : 0)) | 0; ${sl} = nl; ${go("tl", "th")} }`);
      return;
    }
    case I.OP_JMP_RM: {
      if (i.operandSize !== 8) break;
      o.push(`{ ${readRm(w, i, k, 8)} if ((vh >> 15) !== (vh >> 31)) ${gpFaultExit(w, k)} ${go("vl", "vh")} }`);
      return;
    }
  }
  o.push(stopBefore(w, k));
}


/**
 * The last instruction is a system instruction (SYSCALL, SYSRET, IRET, MOV CR, ...): run its
 * interpreter handler here with the engine's per-instruction bookkeeping (TF was 0 and no shadow
 * was active when the block started, so: the shadow it creates, and SYSCALL/SYSRET's trap on the
 * new TF), then leave the block. An unsupported outcome is left to the engine (ST_STOP).
 */
export function terminalCall(w: BlockWriter, k: number): void {
  const i = w.b.insns[k]!;
  const pre = `@WB@ ${flagStore(w)}`;
  w.flag = null;
  const trap = i.op === I.OP_SYSCALL || i.op === I.OP_SYSRET ? `if ((m.flags & ${TF}) !== 0) m.pendingDebugTrap = true;` : "";
  w.out.push(`${pre} r[${RIP_LO}] = ${lit(i.nextLo)}; r[${RIP_HI}] = ${lit(i.nextHi)}; m.nextShadow = ${SHADOW_NONE};` +
    ` const s = H[${i.op}](m, I[${k}]);` +
    ` if (s === ${ST_FAULT} || s === ${ST_UNSUP}) { r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; if (s === ${ST_UNSUP}) m.blockStopInsn = I[${k}]; m.blockExit = s === ${ST_FAULT} ? ${ST_FAULT} : ${ST_STOP}; return ${retired(w, k)}; }` +
    ` m.shadow = m.nextShadow; ${trap} if (s === ${ST_HALT}) m.halted = true; m.blockExit = ${ST_END}; return ${retired(w, k + 1)};`);
}

/**
 * The last instruction is INT n or INT3: delivered here (deliver.ts deliverSoft: one attempt,
 * same checks and frame as the engine's path; the step retires with the delivery). When the
 * attempt raises an exception the machine is as it was (but A/D bits): the instruction is left
 * to the engine (ST_STOP), which repeats the attempt and delivers what it raises.
 */
export function softInt(w: BlockWriter, k: number): void {
  const i = w.b.insns[k]!;
  const vector = i.op === I.OP_INT3 ? BP : i.immLo & 0xff;
  const pre = `@WB@ ${flagStore(w)}`;
  w.flag = null;
  w.out.push(`${pre} r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)};` +
    ` if (DS(m, ${vector}, ${lit(i.nextLo)}, ${lit(i.nextHi)})) { m.blockExit = ${ST_SOFT_DELIVERED}; return ${retired(w, k + 1)}; }` +
    ` m.blockStopInsn = I[${k}]; m.blockExit = ${ST_STOP}; return ${retired(w, k)};`);
}

/** Calls the interpreter handler for instruction k (registers and flags through the Machine). */
export function fallback(w: BlockWriter, k: number): void {
  const i = w.b.insns[k]!;
  const pre = `@WB@ ${flagStore(w)}`;
  w.flag = null;
  w.out.push(`${pre} r[${RIP_LO}] = ${lit(i.nextLo)}; r[${RIP_HI}] = ${lit(i.nextHi)};` +
    ` if (H[${i.op}](m, I[${k}]) === ${ST_FAULT}) { r[${RIP_LO}] = ${lit(i.ripLo)}; r[${RIP_HI}] = ${lit(i.ripHi)}; m.blockExit = ${ST_FAULT}; return ${retired(w, k)}; }` +
    ` @RL@ ${RELOAD} if (blockEnd) { m.blockExit = ${ST_END}; return ${retired(w, k + 1)}; }`);
  // The handler may read or write any register.
  for (let r = 0; r < 16; r++) {
    w.used.add(r);
    w.written.add(r);
  }
}
