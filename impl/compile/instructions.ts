// Native translations of the instructions a hot block is mostly made of: moves, LEA, ALU and TEST,
// INC/DEC/NEG/NOT, SETcc, CMOVcc, 64-bit PUSH/POP, SWAPGS — registers and flags in locals, memory operands through
// the block page cache. Anything else in the middle of a block is run by its interpreter handler
// (block-end.ts fallback).
import * as I from "../insn.ts";
import * as constsModule from "../consts.ts";
import { LAZY_DEC, LAZY_INC } from "../flags.ts";
import { type BlockWriter, exitAfter, gpFaultExit, lit, readReg, regHi, regLo, writeReg } from "./writer.ts";
import { alu, cfExpr, cond } from "./flags.ts";
import { effectiveAddress, readRm, rmwCommit, rmwRead, store, load } from "./memory-operands.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { BASE_HI, BASE_LO, GS, KERNEL_GS_BASE_HI, KERNEL_GS_BASE_LO, SEG_STRIDE, SS, ST_END } = constsModule;

/** Emits instruction k. Returns false if the instruction is not translated natively. */
export function emitInstruction(w: BlockWriter, k: number): boolean {
  const i = w.b.insns[k]!;
  const size = i.operandSize;
  const o = w.out;
  const mem = i.mod !== 3 && i.mod !== -1;
  // Evaluated after the instruction's flag update (exits store the flags as they then stand).
  const endCheck = () => (mem ? `if (blockEnd) ${exitAfter(w, k, lit(i.nextLo), lit(i.nextHi), ST_END)}` : "");
  switch (i.op) {
    case I.OP_NOP:
      return true;
    case I.OP_MOV_R_I:
      o.push(writeReg(w, i.reg, size, lit(i.immLo), lit(i.immHi)));
      return true;
    case I.OP_MOV_R_RM: {
      o.push(`{ ${readRm(w, i, k, size)} ${writeReg(w, i.reg, size, "vl", "vh")} ${endCheck()} }`);
      return true;
    }
    case I.OP_MOV_RM_R: case I.OP_MOV_RM_I: {
      const [lo, hi] = i.op === I.OP_MOV_RM_R ? readReg(w, i.reg, size) : [lit(i.immLo), lit(i.immHi)];
      if (!mem) {
        o.push(`{ const vl = ${lo}, vh = ${hi}; ${writeReg(w, i.rm, size, "vl", "vh")} }`);
        return true;
      }
      o.push(`{ ${effectiveAddress(w, i)} ${store(w, i.seg, size, "el", "eh", lo, hi, k)} ${endCheck()} }`);
      return true;
    }
    case I.OP_LEA: {
      o.push(`{ ${effectiveAddress(w, i)} ${writeReg(w, i.reg, size, "el", "eh")} }`);
      return true;
    }
    case I.OP_MOVZX: case I.OP_MOVSX: {
      const ssz = i.sourceSize;
      let ext: string;
      if (i.op === I.OP_MOVZX) ext = "vl";
      else ext = ssz === 1 ? "((vl << 24) >> 24)" : ssz === 2 ? "((vl << 16) >> 16)" : "vl";
      o.push(`{ ${readRm(w, i, k, ssz)} const xl = ${ext}; ${writeReg(w, i.reg, size, "xl", i.op === I.OP_MOVSX ? "(xl >> 31)" : "0")} ${endCheck()} }`);
      return true;
    }
    case I.OP_XCHG: {
      if (mem) return false;
      const [al, ah] = readReg(w, i.rm, size);
      const [bl, bh] = readReg(w, i.reg, size);
      o.push(`{ const al = ${al}, ah = ${ah}, bl = ${bl}, bh = ${bh}; ${writeReg(w, i.rm, size, "bl", "bh")} ${writeReg(w, i.reg, size, "al", "ah")} }`);
      return true;
    }
    case I.OP_ALU_RM_R: case I.OP_ALU_RM_I: case I.OP_ALU_R_RM: {
      const sub = i.sub;
      if (sub === I.ALU_ADC || sub === I.ALU_SBB) return false;
      if (i.op === I.OP_ALU_R_RM) {
        const rd = readRm(w, i, k, size);
        const a = readReg(w, i.reg, size);
        const s = alu(w, sub, size, a, ["vl", "vh"]);
        const put = sub === I.ALU_CMP ? "" : writeReg(w, i.reg, size, "pr_l", size === 8 ? "pr_h" : "0");
        o.push(`{ ${rd} ${s} ${put} ${endCheck()} }`);
        return true;
      }
      const src: [string, string] = i.op === I.OP_ALU_RM_R ? readReg(w, i.reg, size) : [lit(i.immLo), lit(i.immHi)];
      if (!mem) {
        const a = readReg(w, i.rm, size);
        // The source goes to alu as it is: an immediate stays a literal (alu picks its carry code by it).
        const s = `{ ${alu(w, sub, size, a, src)} }`;
        const put = sub === I.ALU_CMP ? "" : writeReg(w, i.rm, size, "pr_l", size === 8 ? "pr_h" : "0");
        o.push(`${s} ${put}`);
        return true;
      }
      if (sub === I.ALU_CMP) {
        const rd = readRm(w, i, k, size);
        o.push(`{ ${rd} const sl = ${src[0]}, sh = ${src[1]}; ${alu(w, sub, size, ["vl", "vh"], ["sl", "sh"])} ${endCheck()} }`);
        return true;
      }
      const pre = rmwRead(w, i, k, size);
      const s = alu(w, sub, size, ["vl", "vh"], ["sl", "sh"]);
      o.push(`{ const sl = ${src[0]}, sh = ${src[1]}; ${pre} ${s} ${rmwCommit("pr_l", size === 8 ? "pr_h" : "0")} ${endCheck()} }`);
      return true;
    }
    case I.OP_TEST_RM_R: case I.OP_TEST_RM_I: {
      const src: [string, string] = i.op === I.OP_TEST_RM_R ? readReg(w, i.reg, size) : [lit(i.immLo), lit(i.immHi)];
      const rd = readRm(w, i, k, size);
      o.push(`{ ${rd} const sl = ${src[0]}, sh = ${src[1]}; ${alu(w, I.ALU_AND, size, ["vl", "vh"], ["sl", "sh"])} ${endCheck()} }`);
      return true;
    }
    case I.OP_INC: case I.OP_DEC: case I.OP_NEG: case I.OP_NOT: {
      let pre: string;
      if (mem) {
        pre = rmwRead(w, i, k, size);
      } else {
        const [lo, hi] = readReg(w, i.rm, size);
        pre = `const vl = ${lo}, vh = ${hi};`;
      }
      const put = (lo: string, hi: string) => (mem ? `${rmwCommit(lo, hi)} ${endCheck()}` : writeReg(w, i.rm, size, lo, hi));
      if (i.op === I.OP_NOT) {
        const mk = size === 8 || size === 4 ? "" : size === 2 ? " & 65535" : " & 255";
        o.push(`{ ${pre} ${put(`(~vl${mk})`, size === 8 ? "~vh" : "0")} }`);
        return true;
      }
      if (i.op === I.OP_NEG) {
        const s = alu(w, I.ALU_SUB, size, ["0", "0"], ["vl", "vh"]);
        o.push(`{ ${pre} ${s} ${put("pr_l", size === 8 ? "pr_h" : "0")} }`);
        return true;
      }
      const dec = i.op === I.OP_DEC;
      const cf = cfExpr(w);
      let s: string;
      if (size === 8) {
        // The high half changes when the low one wraps: rare, so a branch (well predicted). DEST
        // is not kept: exits rebuild it from the result (writer.ts flagStore), so the loop
        // counter's old value need not stay live to the exit.
        s = dec
          ? "pb_l = 1; pb_h = 0; pr_l = (vl - 1) | 0; pr_h = vh; if (vl === 0) pr_h = (vh - 1) | 0;"
          : "pb_l = 1; pb_h = 0; pr_l = (vl + 1) | 0; pr_h = vh; if (pr_l === 0) pr_h = (vh + 1) | 0;";
      } else {
        const mk = size === 4 ? "| 0" : size === 2 ? "& 65535" : "& 255";
        s = `pb_l = 1; pr_l = (vl ${dec ? "-" : "+"} 1) ${mk};`;
      }
      w.flag = { op: dec ? LAZY_DEC : LAZY_INC, size };
      o.push(`{ ${pre} const c0 = ${cf}; ${s} pc = c0; ${put("pr_l", size === 8 ? "pr_h" : "0")} }`);
      return true;
    }
    case I.OP_PUSH_R: case I.OP_PUSH_I: {
      if (size !== 8) return false;
      const [lo, hi] = i.op === I.OP_PUSH_R ? readReg(w, i.reg, 8) : [lit(i.immLo), lit(i.immHi)];
      const sl = regLo(w, 4), sh = regHi(w, 4);
      w.written.add(4);
      o.push(`{ const vl = ${lo}, vh = ${hi}; const nl = (${sl} - 8) | 0, nh = (${sh} - ((${sl} >>> 0) < 8 ? 1 : 0)) | 0;` +
        ` ${store(w, SS, 8, "nl", "nh", "vl", "vh", k)} ${sl} = nl; ${sh} = nh;` +
        ` if (blockEnd) ${exitAfter(w, k, lit(i.nextLo), lit(i.nextHi), ST_END)} }`);
      return true;
    }
    case I.OP_POP_R: {
      if (size !== 8) return false;
      const sl = regLo(w, 4), sh = regHi(w, 4);
      w.written.add(4);
      o.push(`{ ${load(w, SS, 8, sl, sh, k)}` +
        ` const nl = (${sl} + 8) | 0; ${sh} = (${sh} + ((nl >>> 0) < (${sl} >>> 0) ? 1 : 0)) | 0; ${sl} = nl;` +
        ` ${writeReg(w, i.reg, 8, "vl", "vh")} if (blockEnd) ${exitAfter(w, k, lit(i.nextLo), lit(i.nextHi), ST_END)} }`);
      return true;
    }
    case I.OP_SETCC: {
      const [pre, c] = cond(w, i.sub);
      if (!mem) {
        o.push(`${pre} ${writeReg(w, i.rm, 1, `(${c} ? 1 : 0)`, "0")}`);
        return true;
      }
      o.push(`${pre} { const vl = ${c} ? 1 : 0; ${effectiveAddress(w, i)} ${store(w, i.seg, 1, "el", "eh", "vl", "0", k)} ${endCheck()} }`);
      return true;
    }
    case I.OP_CMOVCC: {
      // The source is read whatever the condition (a memory source may fault).
      const rd = readRm(w, i, k, size);
      const [pre, c] = cond(w, i.sub);
      const otherwise = size === 4 ? ` else { ${regHi(w, i.reg)} = 0; }` : "";
      w.written.add(i.reg);
      o.push(`{ ${rd} ${pre} if (${c}) { ${writeReg(w, i.reg, size, "vl", "vh")} }${otherwise} ${endCheck()} }`);
      return true;
    }
    case I.OP_SWAPGS: {
      const b = GS * SEG_STRIDE;
      o.push(`if (${w.cpl} !== 0) ${gpFaultExit(w, k)} { ${w.swapgs ?? `const sg = m.segments, ms = m.msr, a = sg[${b + BASE_LO}], c = sg[${b + BASE_HI}];` +
        ` sg[${b + BASE_LO}] = ms[${KERNEL_GS_BASE_LO}]; sg[${b + BASE_HI}] = ms[${KERNEL_GS_BASE_HI}]; ms[${KERNEL_GS_BASE_LO}] = a; ms[${KERNEL_GS_BASE_HI}] = c;`} }`);
      return true;
    }
    default:
      return false;
  }
}
