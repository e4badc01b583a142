// Flags in generated code: a flag-setting instruction assigns its operands and result to the
// producer locals (pa_* DEST, pb_* SRC, pr_* result, pc carry) instead of the Machine's lazy record
// (impl/flags.ts); conditions and CF are computed from those locals directly (ZF of `dec` is
// `pr_l === 0`), and only exits store them into the Machine (writer.ts flagStore). When the
// producer is unknown (after an interpreter call, at block entry) they are read from the Machine.
import * as I from "../insn.ts";
import * as constsModule from "../consts.ts";
import { LAZY_ADC, LAZY_ADD, LAZY_DEC, LAZY_INC, LAZY_LOGIC, LAZY_NONE, LAZY_SBB, LAZY_SUB } from "../flags.ts";
import { type BlockWriter, type FlagProducer, flagStore, producerFields } from "./writer.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const { AF, ARITH, CF, OF, SF, ZF } = constsModule;

/** Expression for the current CF (0/1). */
export function cfExpr(w: BlockWriter): string {
  const f = w.flag;
  if (f === null) return `(m.lazyOp === ${LAZY_NONE} ? m.flags & 1 : CF(m))`;
  switch (f.op) {
    case LAZY_LOGIC:
      return "0";
    case LAZY_INC: case LAZY_DEC:
      return "pc";
    case LAZY_ADD:
      if (f.size === 8) return "(((pr_h >>> 0) < (pa_h >>> 0) || (pr_h === pa_h && (pr_l >>> 0) < (pa_l >>> 0))) ? 1 : 0)";
      return f.size === 4 ? "((pr_l >>> 0) < (pa_l >>> 0) ? 1 : 0)" : "(pr_l < pa_l ? 1 : 0)";
    default:
      if (f.size === 8) return "(((pa_h >>> 0) < (pb_h >>> 0) || (pa_h === pb_h && (pa_l >>> 0) < (pb_l >>> 0))) ? 1 : 0)";
      return f.size === 4 ? "((pa_l >>> 0) < (pb_l >>> 0) ? 1 : 0)" : "(pa_l < pb_l ? 1 : 0)";
  }
}

/** Boolean expression for condition code `cc` (tttn), or null when it must be read from the Machine. */
function condExpr(w: BlockWriter, cc: number): string | null {
  const f = w.flag;
  if (f === null) return null;
  const sz = f.size;
  const z = sz === 8 ? "((pr_l | pr_h) === 0)" : "(pr_l === 0)";
  const s = sz === 8 ? "(pr_h < 0)" : sz === 4 ? "(pr_l < 0)" : sz === 2 ? "((pr_l & 32768) !== 0)" : "((pr_l & 128) !== 0)";
  const p = "(P[pr_l & 255] !== 0)";
  let e: string | null = null;
  const base = cc >> 1;
  if (f.op === LAZY_LOGIC) {
    e = ["false", "false", z, z, s, p, s, `(${z} || ${s})`][base]!;
  } else if (f.op === LAZY_SUB) {
    const sh = 32 - 8 * sz;
    const ult = sz === 8 ? "((pa_h >>> 0) < (pb_h >>> 0) || (pa_h === pb_h && (pa_l >>> 0) < (pb_l >>> 0)))"
      : sz === 4 ? "((pa_l >>> 0) < (pb_l >>> 0))" : "(pa_l < pb_l)";
    const slt = sz === 8 ? "(pa_h < pb_h || (pa_h === pb_h && (pa_l >>> 0) < (pb_l >>> 0)))"
      : sz === 4 ? "(pa_l < pb_l)" : `(((pa_l << ${sh}) >> ${sh}) < ((pb_l << ${sh}) >> ${sh}))`;
    const eq = sz === 8 ? "(pa_l === pb_l && pa_h === pb_h)" : "(pa_l === pb_l)";
    const of = sz === 8 ? "(((pa_h ^ pb_h) & (pa_h ^ pr_h)) < 0)" : sz === 4 ? "(((pa_l ^ pb_l) & (pa_l ^ pr_l)) < 0)"
      : `((((pa_l ^ pb_l) & (pa_l ^ pr_l)) << ${sh}) < 0)`;
    e = [of, ult, eq, `(${ult} || ${eq})`, s, p, slt, `(${slt} || ${eq})`][base]!;
  } else if (f.op === LAZY_ADD) {
    if (base === 1) e = `(${cfExpr(w)} !== 0)`;
    else if (base === 2) e = z;
    else if (base === 3) e = `(${cfExpr(w)} !== 0 || ${z})`;
    else if (base === 4) e = s;
    else if (base === 5) e = p;
  } else {
    if (base === 1) e = "(pc !== 0)";
    else if (base === 2) e = z;
    else if (base === 3) e = `(pc !== 0 || ${z})`;
    else if (base === 4) e = s;
    else if (base === 5) e = p;
  }
  if (e === null) return null;
  return (cc & 1) !== 0 ? `!${e}` : e;
}

/** A branch condition: [statements before it, boolean expression] — from the producer locals when
 *  possible, else from the Machine's flags (the producer is stored first). */
export function cond(w: BlockWriter, cc: number): [string, string] {
  const e = condExpr(w, cc);
  if (e !== null) return ["", e];
  const pre = flagStore(w);
  w.flag = null;
  return [pre, `C(m, ${cc})`];
}

/** Whether a source operand is a literal (an immediate) rather than a register or memory value. */
function isLiteral(v: string): boolean {
  return /^-?[0-9]+$/.test(v);
}

/** Statements computing ALU operation `sub` (ADD..CMP) at `size` on DEST `a` and SRC `bv` into the
 *  producer locals; the result is in pr_l/pr_h.
 *
 *  The carry between the halves of a 64-bit ADD/SUB: with a register or memory source it is
 *  data-dependent, about as often 1 as 0, so it must not become a branch (mispredicted every other
 *  time): `(compare) | 0` is the form V8 turns into a flag-to-register move (setcc), where
 *  `compare ? 1 : 0` became a branch and the carry's bit formula cost six operations; with an
 *  immediate a carry is rare, so a compare guarding an increment (a well-predicted branch) is
 *  cheapest. */
export function alu(w: BlockWriter, sub: number, size: number, a: [string, string], bv: [string, string]): string {
  const mask = size === 4 ? "| 0" : size === 2 ? "& 65535" : size === 1 ? "& 255" : "| 0";
  let s: string;
  if (size === 8) {
    s = `pa_l = ${a[0]}; pa_h = ${a[1]}; pb_l = ${bv[0]}; pb_h = ${bv[1]};`;
    switch (sub) {
      case I.ALU_ADD:
        s += isLiteral(bv[0])
          ? " pr_l = (pa_l + pb_l) | 0; pr_h = (pa_h + pb_h) | 0; if ((pr_l >>> 0) < (pa_l >>> 0)) pr_h = (pr_h + 1) | 0;"
          : " pr_l = (pa_l + pb_l) | 0; pr_h = (pa_h + pb_h + (((pr_l >>> 0) < (pa_l >>> 0)) | 0)) | 0;";
        break;
      case I.ALU_SUB: case I.ALU_CMP:
        s += isLiteral(bv[0])
          ? " pr_l = (pa_l - pb_l) | 0; pr_h = (pa_h - pb_h) | 0; if ((pa_l >>> 0) < (pb_l >>> 0)) pr_h = (pr_h - 1) | 0;"
          : " pr_l = (pa_l - pb_l) | 0; pr_h = (pa_h - pb_h - (((pa_l >>> 0) < (pb_l >>> 0)) | 0)) | 0;";
        break;
      case I.ALU_AND:
        s += " pr_l = pa_l & pb_l; pr_h = pa_h & pb_h;";
        break;
      case I.ALU_OR:
        s += " pr_l = pa_l | pb_l; pr_h = pa_h | pb_h;";
        break;
      default:
        s += " pr_l = pa_l ^ pb_l; pr_h = pa_h ^ pb_h;";
    }
  } else {
    const m = size === 4 ? "" : size === 2 ? " & 65535" : " & 255";
    s = `pa_l = ${a[0]}${m}; pb_l = ${bv[0]}${m};`;
    switch (sub) {
      case I.ALU_ADD:
        s += ` pr_l = (pa_l + pb_l) ${mask};`;
        break;
      case I.ALU_SUB: case I.ALU_CMP:
        s += ` pr_l = (pa_l - pb_l) ${mask};`;
        break;
      case I.ALU_AND:
        s += " pr_l = pa_l & pb_l;";
        break;
      case I.ALU_OR:
        s += " pr_l = pa_l | pb_l;";
        break;
      default:
        s += " pr_l = pa_l ^ pb_l;";
    }
  }
  const op = sub === I.ALU_ADD ? LAZY_ADD : sub === I.ALU_SUB || sub === I.ALU_CMP ? LAZY_SUB : LAZY_LOGIC;
  w.flag = { op, size };
  return s;
}

/** True when the flags at the top of a loop iteration can be observed before the first
 *  instruction that rewrites all of them (then the back edge must store them). */
export function flagsLiveAtHead(w: BlockWriter): boolean {
  for (const i of w.b.insns) {
    const mem = i.mod !== 3 && i.mod !== -1;
    switch (i.op) {
      case I.OP_ALU_RM_R: case I.OP_ALU_RM_I: case I.OP_ALU_R_RM:
        if (i.sub === I.ALU_ADC || i.sub === I.ALU_SBB || mem) return true;
        return false;
      case I.OP_TEST_RM_R: case I.OP_TEST_RM_I: case I.OP_NEG:
        return mem;
      case I.OP_MOV_R_I: case I.OP_LEA: case I.OP_NOP:
        continue;
      case I.OP_MOV_R_RM: case I.OP_MOV_RM_R: case I.OP_MOV_RM_I: case I.OP_MOVZX: case I.OP_MOVSX: case I.OP_XCHG:
      case I.OP_NOT:
        if (mem) return true;
        continue;
      default:
        return true;
    }
  }
  return true;
}

/**
 * Expression for the six arithmetic flag bits of producer `f` from the producer locals: impl/flags.ts
 * arithFlags written out for one operation and size (a call would not be inlined into a large
 * trace), with the same formulas. test/impl/compile/flags-value.test.ts compares the two on every
 * operation and size.
 */
export function arithFlagsExpr(f: FlagProducer): string {
  // Each field parenthesised: INC/DEC's DEST is an expression.
  const [, , rl, rh, al, ah, bl, bh, c] = producerFields(f).map((x) => (/^[\w-]+$/.test(x) ? x : `(${x})`)) as ReturnType<typeof producerFields>;
  const op = f.op, sz = f.size;
  const af = op === LAZY_LOGIC ? "0" : `((${al} ^ ${bl} ^ ${rl}) & ${AF})`;
  let zf: string, sf: string, cf = "false", of = "false";
  if (sz === 8) {
    const ult = (xh: string, xl: string, yh: string, yl: string) =>
      `((${xh} >>> 0) < (${yh} >>> 0) || (${xh} === ${yh} && (${xl} >>> 0) < (${yl} >>> 0)))`;
    zf = `((${rl} | ${rh}) === 0 ? ${ZF} : 0)`;
    sf = `(${rh} < 0 ? ${SF} : 0)`;
    const ofAdd = `(((${ah} ^ ${rh}) & (${bh} ^ ${rh})) < 0)`, ofSub = `(((${ah} ^ ${bh}) & (${ah} ^ ${rh})) < 0)`;
    switch (op) {
      case LAZY_ADD: cf = ult(rh, rl, ah, al); of = ofAdd; break;
      case LAZY_ADC: cf = `(${c} !== 0 ? !${ult(ah, al, rh, rl)} : ${ult(rh, rl, ah, al)})`; of = ofAdd; break;
      case LAZY_SUB: cf = ult(ah, al, bh, bl); of = ofSub; break;
      case LAZY_SBB: cf = `(${c} !== 0 ? !${ult(bh, bl, ah, al)} : ${ult(ah, al, bh, bl)})`; of = ofSub; break;
      case LAZY_INC: cf = `(${c} !== 0)`; of = ofAdd; break;
      case LAZY_DEC: cf = `(${c} !== 0)`; of = ofSub; break;
      default: break;
    }
  } else {
    // Values are kept masked to the operand size; the sign bit is shifted to bit 31.
    const sh = 32 - 8 * sz;
    const u = (v: string) => `((${v} << ${sh}) >>> 0)`;
    const a = u(al), b = u(bl), r = u(rl);
    zf = `(((${rl} << ${sh}) | 0) === 0 ? ${ZF} : 0)`;
    sf = `((${rl} << ${sh}) < 0 ? ${SF} : 0)`;
    const ofAdd = `(((${a} ^ ${r}) & (${b} ^ ${r})) < 0)`, ofSub = `(((${a} ^ ${b}) & (${a} ^ ${r})) < 0)`;
    switch (op) {
      case LAZY_ADD: cf = `(${r} < ${a})`; of = ofAdd; break;
      case LAZY_ADC: cf = `(${c} !== 0 ? ${r} <= ${a} : ${r} < ${a})`; of = ofAdd; break;
      case LAZY_SUB: cf = `(${a} < ${b})`; of = ofSub; break;
      case LAZY_SBB: cf = `(${c} !== 0 ? ${a} <= ${b} : ${a} < ${b})`; of = ofSub; break;
      case LAZY_INC: cf = `(${c} !== 0)`; of = ofAdd; break;
      case LAZY_DEC: cf = `(${c} !== 0)`; of = ofSub; break;
      default: break;
    }
  }
  return `(P[${rl} & 255] | ${zf} | ${sf} | (${cf} ? ${CF} : 0) | (${of} ? ${OF} : 0) | ${af})`;
}

/** Expression for the full RFLAGS (low 32 bits) with the arithmetic flags of the current producer
 *  (arithFlagsExpr) or, with none, of the Machine (GF: impl/flags.ts getFlags, a factory parameter
 *  of traces). Reads the producer locals without storing them. */
export function flagsValue(w: BlockWriter): string {
  const f = w.flag;
  if (f === null) return `(m.lazyOp === ${LAZY_NONE} ? m.flags : GF(m))`;
  return `((m.flags & ${~ARITH}) | ${arithFlagsExpr(f)})`;
}
