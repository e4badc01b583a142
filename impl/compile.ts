// The block compiler: turns a hot decoded block (64-bit mode) into a JavaScript function.
//
// What the generated code does that the interpreter does not:
//   * guest registers live in JS locals for the whole block (loaded at entry, written back at
//     every exit and around interpreter calls);
//   * flags stay in locals: each flag-setting instruction assigns the lazy record's operands to
//     locals (pa_*, pb_*, pr_*, pc) and only exits store them into the Machine; conditional
//     branches test the operands directly (ZF of `dec` is `pr_l === 0`);
//   * a block whose last instruction jumps back to its first loops inside the function while the
//     step budget allows a whole further iteration.
// Instructions it does not translate are executed by calling the interpreter handler; a block-ending
// SYSCALL/SYSRET/IRET/... runs its handler at the block's end (terminalCall), INT n / INT3 are
// delivered by the block (softInt), other block-ending instructions that raise events are left to
// the engine (exit status ST_STOP with Machine.bins set).
//
// Untrusted guests: the generated source contains only numbers produced by the decoder
// (register numbers, sizes, immediates, displacements, RIPs) and fixed templates — never guest
// bytes or strings. Invalidation is the block cache's (blocks.ts): a compiled function belongs to
// its Block and dies with it.
import type { Block, BlockFn } from "./blocks.ts";
import type { Machine } from "./machine.ts";
import * as I from "./insn.ts";
import type { Insn } from "./insn.ts";
import { HANDLERS, endsBlock } from "./handlers.ts";
import { LAZY_ADD, LAZY_DEC, LAZY_INC, LAZY_LOGIC, LAZY_SUB, PARITY, carry, condition } from "./flags.ts";
import { FS, GS, SEG_STRIDE, BASE_LO, BASE_HI, SS } from "./consts.ts";
import { deliverSoft } from "./deliver.ts";

/** Executions of a block before it is compiled. */
export const COMPILE_AFTER = 2;
/** After any Machine call (the only place the pool, the TLB or Machine.blockEnd change while a
 *  block runs): the pool arrays again, an empty block page cache (Gen.lastPage), and `be`, the
 *  local copy of blockEnd the generated code tests. */
const RELOAD = "M = m.mem32; M8 = m.mem8; lpt = -1; lpc = 0; be = m.blockEnd;";
/** Exit status: stopped before Machine.bins, which the engine executes next. */
export const ST_STOP = 7;

const NATIVE_ENDERS = new Set([I.OP_JMP, I.OP_JCC, I.OP_CALL, I.OP_RET, I.OP_JMP_RM, I.OP_CALL_RM]);
/** Block enders that raise events or stop the run: the engine executes them (ST_STOP). */
const ENGINE_ENDERS = new Set([I.OP_INT, I.OP_INT3, I.OP_INT1, I.OP_INTO, I.OP_UD, I.OP_GP0, I.OP_UNSUP]);

interface Producer {
  readonly op: number;
  readonly size: number;
}

/** Compiles a block, or returns null when it is not worth it / not supported (then interpreted). */
export function compileBlock(b: Block): BlockFn | null {
  const first = b.insns[0]!;
  if (first.mode !== I.MODE_64) return null;
  if (endsBlock(first.op) && !NATIVE_ENDERS.has(first.op)) return null;
  const gen = new Gen(b);
  const src = gen.source();
  try {
    const factory = new Function("H", "I", "P", "C", "CF", "DS", src) as (
      h: typeof HANDLERS, insns: readonly Insn[], parity: Uint8Array, cond: typeof condition, cf: typeof carry,
      ds: typeof deliverSoft,
    ) => BlockFn;
    return factory(HANDLERS, b.insns, PARITY, condition, carry, deliverSoft);
  } catch {
    return null;
  }
}

/** The JavaScript source compileBlock would build (diagnostics and tests). */
export function blockSource(b: Block): string {
  return new Gen(b).source();
}

/** Literal of an int32. */
function lit(v: number): string {
  return String(v | 0);
}

class Gen {
  private readonly used = new Set<number>();
  private readonly written = new Set<number>();
  private flag: Producer | null = null;
  private readonly out: string[] = [];
  private readonly n: number;
  private readonly loop: boolean;

  constructor(private readonly b: Block) {
    const insns = b.insns;
    this.n = insns.length;
    const last = insns[this.n - 1]!;
    this.loop = (last.op === I.OP_JMP || last.op === I.OP_JCC) && last.tgtLo === b.ripLo && last.tgtHi === b.ripHi;
  }

  // ---------------------------------------------------------------------------------------------
  // registers
  // ---------------------------------------------------------------------------------------------

  private rl(n: number): string {
    this.used.add(n);
    return `r${n}l`;
  }
  private rh(n: number): string {
    this.used.add(n);
    return `r${n}h`;
  }

  /** [lo, hi] expressions of register n at `size` (values of sizes 1/2 are masked). */
  private readReg(n: number, size: number): [string, string] {
    if (size === 8) return [this.rl(n), this.rh(n)];
    if (size === 4) return [this.rl(n), "0"];
    if (size === 2) return [`(${this.rl(n)} & 65535)`, "0"];
    if (n >= I.REG_AH) return [`((${this.rl(n - I.REG_AH)} >> 8) & 255)`, "0"];
    return [`(${this.rl(n)} & 255)`, "0"];
  }

  private writeReg(n: number, size: number, lo: string, hi: string): string {
    const base = n >= I.REG_AH && size === 1 ? n - I.REG_AH : n;
    this.written.add(base);
    const l = this.rl(base), h = this.rh(base);
    if (size === 8) return `${l} = ${lo}; ${h} = ${hi};`;
    if (size === 4) return `${l} = ${lo}; ${h} = 0;`;
    if (size === 2) return `${l} = (${l} & -65536) | ((${lo}) & 65535);`;
    if (n >= I.REG_AH) return `${l} = (${l} & -65281) | (((${lo}) & 255) << 8);`;
    return `${l} = (${l} & -256) | ((${lo}) & 255);`;
  }

  // ---------------------------------------------------------------------------------------------
  // exits
  // ---------------------------------------------------------------------------------------------

  /** Stores the current flag producer into the Machine (lazy record); afterwards flags live there. */
  private flagStore(): string {
    const f = this.flag;
    if (f === null) return "";
    const wide = f.size === 8;
    if (f.op === LAZY_LOGIC) {
      return `m.lop = ${f.op}; m.lsz = ${f.size}; m.lrl = pr_l; m.lrh = ${wide ? "pr_h" : "0"}; m.lal = 0; m.lah = 0; m.lbl = 0; m.lbh = 0;`;
    }
    return `m.lop = ${f.op}; m.lsz = ${f.size}; m.lrl = pr_l; m.lrh = ${wide ? "pr_h" : "0"}; m.lal = pa_l; ` +
      `m.lah = ${wide ? "pa_h" : "0"}; m.lbl = pb_l; m.lbh = ${wide ? "pb_h" : "0"}; m.lc = pc;`;
  }

  /** Exit before instruction k with status `st` (RIP = instruction k). */
  private exitAt(k: number, st: number, extra = ""): string {
    const i = this.b.insns[k]!;
    return `{ @WB@ ${this.flagStore()} ${extra} r[32] = ${lit(i.ripLo)}; r[33] = ${lit(i.ripHi)}; m.bstat = ${st}; return n + ${k}; }`;
  }

  private fault(k: number): string {
    return this.exitAt(k, 1);
  }

  /** Exit after instruction k completed, continuing at (lo, hi) (expressions). */
  private exitAfter(k: number, lo: string, hi: string, st = 0): string {
    return `{ @WB@ ${this.flagStore()} r[32] = ${lo}; r[33] = ${hi}; m.bstat = ${st}; return n + ${k + 1}; }`;
  }

  private gpFault(k: number): string {
    return this.exitAt(k, 1, "m.raise(13, 0);");
  }

  // ---------------------------------------------------------------------------------------------
  // memory operands
  // ---------------------------------------------------------------------------------------------

  /** Statements that leave the operand's offset in `el`/`eh`. */
  private ea(i: Insn): string {
    let s: string;
    if (i.base === I.BASE_RIP) {
      // RIP-relative: next RIP + displacement, known now.
      const lo = (i.nextLo + i.dispLo) | 0;
      const hi = (i.nextHi + i.dispHi + ((lo >>> 0) < (i.nextLo >>> 0) ? 1 : 0)) | 0;
      s = `let el = ${lo}, eh = ${hi};`;
    } else if (i.base >= 0) {
      const bl = this.rl(i.base), bh = this.rh(i.base);
      if (i.dispLo === 0 && i.dispHi === 0) s = `let el = ${bl}, eh = ${bh};`;
      else s = `let el = (${bl} + ${lit(i.dispLo)}) | 0, eh = (${bh} + ${lit(i.dispHi)} + ((el >>> 0) < (${bl} >>> 0) ? 1 : 0)) | 0;`;
    } else s = `let el = ${lit(i.dispLo)}, eh = ${lit(i.dispHi)};`;
    if (i.index >= 0) {
      const xl = this.rl(i.index), xh = this.rh(i.index);
      const sc = i.scale;
      const xlo = sc === 0 ? xl : `(${xl} << ${sc})`;
      const xhi = sc === 0 ? xh : `((${xh} << ${sc}) | (${xl} >>> ${32 - sc}))`;
      s += ` { const xl = ${xlo}, t = (el + xl) | 0; eh = (eh + ${xhi} + ((t >>> 0) < (el >>> 0) ? 1 : 0)) | 0; el = t; }`;
    }
    if (i.asz === 4) s += " eh = 0;";
    return s;
  }

  /** Reads the r/m operand into vl/vh (declared here). */
  private readRm(i: Insn, k: number, size: number): string {
    if (i.mod === 3) {
      const [lo, hi] = this.readReg(i.rm, size);
      return `const vl = ${lo}, vh = ${hi};`;
    }
    return `${this.ea(i)} ${this.load(i.seg, size, "el", "eh", k)}`;
  }

  /** Linear address of offset (lo, hi) in segment `seg` into ll/lh (64-bit mode: FS/GS base). */
  private linear(seg: number, lo: string, hi: string): string {
    if (seg !== FS && seg !== GS) return `const ll = ${lo}, lh = ${hi};`;
    const b = seg * SEG_STRIDE;
    return `const ll = (${lo} + m.sg[${b + BASE_LO}]) | 0, lh = (${hi} + m.sg[${b + BASE_HI}] + ((ll >>> 0) < ((${lo}) >>> 0) ? 1 : 0)) | 0;`;
  }

  /**
   * A data read of `size` bytes at offset (lo, hi) of `seg` into `let vl, vh`: the TLB fast path
   * inline (entry grants the current read class, access aligned so it stays in the page), the
   * Machine's general path otherwise (faults exit the block as instruction k).
   */
  private load(seg: number, size: number, lo: string, hi: string, k: number): string {
    const align = size - 1;
    let fast: string;
    if (size === 8) fast = "const o = (lpo + (ll & 4095)) >> 2; vl = M[o]; vh = M[o + 1];";
    else if (size === 4) fast = "vl = M[(lpo + (ll & 4095)) >> 2]; vh = 0;";
    else if (size === 2) fast = "const o = lpo + (ll & 4095); vl = M8[o] | (M8[o + 1] << 8); vh = 0;";
    else fast = "vl = M8[lpo + (ll & 4095)]; vh = 0;";
    return `let vl = 0, vh = 0; { ${this.linear(seg, lo, hi)} ${this.lastPage()}` +
      ` if ((lpc & m.rfast) !== 0${align ? ` && (ll & ${align}) === 0` : ""}) { ${fast} }` +
      ` else { vl = m.ld(${seg}, ${lo}, ${hi}, ${size}); if (m.fVec >= 0) ${this.fault(k)} vh = ${size === 8 ? "m.vh" : "0"}; ${RELOAD} } }`;
  }

  /**
   * The block's one-entry page cache (locals lpt/lph: linear page, lpc: classes, lpo: pool offset):
   * a copy of the TLB entry for the page of `ll`/`lh` (lpc = 0 when the TLB has none). The TLB
   * changes only inside Machine calls (slow paths, interpreter handlers), after which RELOAD
   * empties the copy; within a block, between such calls, the copy equals the entry.
   */
  private lastPage(): string {
    return "const tg = ll >>> 12; if (tg !== lpt || lh !== lph) { const te = (tg & 1023) << 2;" +
      " if (T[te] === tg && T[te + 1] === lh) { lpt = tg; lph = lh; lpc = T[te + 2]; lpo = T[te + 3]; } else { lpt = -1; lpc = 0; } }";
  }

  /** A data write (see load); the caller checks `be` (blockEnd) after the instruction. */
  private store(seg: number, size: number, lo: string, hi: string, vlo: string, vhi: string, k: number): string {
    const align = size - 1;
    let fast: string;
    if (size === 8) fast = `const o = (lpo + (ll & 4095)) >> 2; M[o] = ${vlo}; M[o + 1] = ${vhi};`;
    else if (size === 4) fast = `M[(lpo + (ll & 4095)) >> 2] = ${vlo};`;
    else if (size === 2) fast = `const o = lpo + (ll & 4095); M8[o] = ${vlo}; M8[o + 1] = (${vlo}) >> 8;`;
    else fast = `M8[lpo + (ll & 4095)] = ${vlo};`;
    return `{ ${this.linear(seg, lo, hi)} ${this.lastPage()}` +
      ` if ((lpc & m.wfast) !== 0${align ? ` && (ll & ${align}) === 0` : ""}) { ${fast} }` +
      ` else { if (m.st(${seg}, ${lo}, ${hi}, ${size}, ${vlo}, ${vhi}) === 1) ${this.fault(k)} ${RELOAD} } }`;
  }

  // ---------------------------------------------------------------------------------------------
  // flags
  // ---------------------------------------------------------------------------------------------

  /** Expression for the current CF (0/1). */
  private cfExpr(): string {
    const f = this.flag;
    if (f === null) return "(m.lop === 0 ? m.flags & 1 : CF(m))";
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

  /** Boolean expression for condition `cc`, or null when it must be read from the Machine. */
  private condExpr(cc: number): string | null {
    const f = this.flag;
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
      if (base === 1) e = `(${this.cfExpr()} !== 0)`;
      else if (base === 2) e = z;
      else if (base === 3) e = `(${this.cfExpr()} !== 0 || ${z})`;
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

  /** Condition for a branch: from locals when possible, else from the Machine's flags. */
  private cond(cc: number): [string, string] {
    const e = this.condExpr(cc);
    if (e !== null) return ["", e];
    const pre = this.flagStore();
    this.flag = null;
    return [pre, `C(m, ${cc})`];
  }

  /** Assigns the producer operands/result for an ALU op; returns statements. The result is in
   *  pr_l/pr_h. */
  private alu(sub: number, size: number, a: [string, string], bv: [string, string]): string {
    const mask = size === 4 ? "| 0" : size === 2 ? "& 65535" : size === 1 ? "& 255" : "| 0";
    let s: string;
    if (size === 8) {
      s = `pa_l = ${a[0]}; pa_h = ${a[1]}; pb_l = ${bv[0]}; pb_h = ${bv[1]};`;
      switch (sub) {
        case I.ALU_ADD:
          s += " pr_l = (pa_l + pb_l) | 0; pr_h = (pa_h + pb_h + ((pr_l >>> 0) < (pa_l >>> 0) ? 1 : 0)) | 0;";
          break;
        case I.ALU_SUB: case I.ALU_CMP:
          s += " pr_l = (pa_l - pb_l) | 0; pr_h = (pa_h - pb_h - ((pa_l >>> 0) < (pb_l >>> 0) ? 1 : 0)) | 0;";
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
    this.flag = { op, size };
    return s;
  }

  // ---------------------------------------------------------------------------------------------
  // instructions
  // ---------------------------------------------------------------------------------------------

  /** Emits instruction k. Returns false if the instruction is not translated natively. */
  private emit(k: number): boolean {
    const i = this.b.insns[k]!;
    const size = i.osz;
    const o = this.out;
    const mem = i.mod !== 3 && i.mod !== -1;
    // Evaluated after the instruction's flag update (exits store the flags as they then stand).
    const endCheck = () => (mem ? `if (be) ${this.exitAfter(k, lit(i.nextLo), lit(i.nextHi), 2)}` : "");
    switch (i.op) {
      case I.OP_NOP:
        return true;
      case I.OP_MOV_R_I:
        o.push(this.writeReg(i.reg, size, lit(i.immLo), lit(i.immHi)));
        return true;
      case I.OP_MOV_R_RM: {
        o.push(`{ ${this.readRm(i, k, size)} ${this.writeReg(i.reg, size, "vl", "vh")} ${endCheck()} }`);
        return true;
      }
      case I.OP_MOV_RM_R: case I.OP_MOV_RM_I: {
        const [lo, hi] = i.op === I.OP_MOV_RM_R ? this.readReg(i.reg, size) : [lit(i.immLo), lit(i.immHi)];
        if (!mem) {
          o.push(`{ const vl = ${lo}, vh = ${hi}; ${this.writeReg(i.rm, size, "vl", "vh")} }`);
          return true;
        }
        o.push(`{ ${this.ea(i)} ${this.store(i.seg, size, "el", "eh", lo, hi, k)} ${endCheck()} }`);
        return true;
      }
      case I.OP_LEA: {
        o.push(`{ ${this.ea(i)} ${this.writeReg(i.reg, size, "el", "eh")} }`);
        return true;
      }
      case I.OP_MOVZX: case I.OP_MOVSX: {
        const ssz = i.ssz;
        let ext: string;
        if (i.op === I.OP_MOVZX) ext = "vl";
        else ext = ssz === 1 ? "((vl << 24) >> 24)" : ssz === 2 ? "((vl << 16) >> 16)" : "vl";
        o.push(`{ ${this.readRm(i, k, ssz)} const xl = ${ext}; ${this.writeReg(i.reg, size, "xl", i.op === I.OP_MOVSX ? "(xl >> 31)" : "0")} ${endCheck()} }`);
        return true;
      }
      case I.OP_XCHG: {
        if (mem) return false;
        const [al, ah] = this.readReg(i.rm, size);
        const [bl, bh] = this.readReg(i.reg, size);
        o.push(`{ const al = ${al}, ah = ${ah}, bl = ${bl}, bh = ${bh}; ${this.writeReg(i.rm, size, "bl", "bh")} ${this.writeReg(i.reg, size, "al", "ah")} }`);
        return true;
      }
      case I.OP_ALU_RM_R: case I.OP_ALU_RM_I: case I.OP_ALU_R_RM: {
        const sub = i.sub;
        if (sub === I.ALU_ADC || sub === I.ALU_SBB) return false;
        if (i.op === I.OP_ALU_R_RM) {
          const rd = this.readRm(i, k, size);
          const a = this.readReg(i.reg, size);
          const s = this.alu(sub, size, a, ["vl", "vh"]);
          const w = sub === I.ALU_CMP ? "" : this.writeReg(i.reg, size, "pr_l", size === 8 ? "pr_h" : "0");
          o.push(`{ ${rd} ${s} ${w} ${endCheck()} }`);
          return true;
        }
        const src: [string, string] = i.op === I.OP_ALU_RM_R ? this.readReg(i.reg, size) : [lit(i.immLo), lit(i.immHi)];
        if (!mem) {
          const a = this.readReg(i.rm, size);
          const s = `{ const sl = ${src[0]}, sh = ${src[1]}; ${this.alu(sub, size, a, ["sl", "sh"])} }`;
          const w = sub === I.ALU_CMP ? "" : this.writeReg(i.rm, size, "pr_l", size === 8 ? "pr_h" : "0");
          o.push(`${s} ${w}`);
          return true;
        }
        if (sub === I.ALU_CMP) {
          const rd = this.readRm(i, k, size);
          o.push(`{ ${rd} const sl = ${src[0]}, sh = ${src[1]}; ${this.alu(sub, size, ["vl", "vh"], ["sl", "sh"])} ${endCheck()} }`);
          return true;
        }
        const pre = `${this.ea(i)} const vl = m.rmw(${i.seg}, el, eh, ${size}); if (m.fVec >= 0) ${this.fault(k)} const vh = ${size === 8 ? "m.vh" : "0"};`;
        const s = this.alu(sub, size, ["vl", "vh"], ["sl", "sh"]);
        o.push(`{ const sl = ${src[0]}, sh = ${src[1]}; ${pre} ${s} m.commit(pr_l, ${size === 8 ? "pr_h" : "0"}); ${RELOAD} ${endCheck()} }`);
        return true;
      }
      case I.OP_TEST_RM_R: case I.OP_TEST_RM_I: {
        const src: [string, string] = i.op === I.OP_TEST_RM_R ? this.readReg(i.reg, size) : [lit(i.immLo), lit(i.immHi)];
        const rd = this.readRm(i, k, size);
        o.push(`{ ${rd} const sl = ${src[0]}, sh = ${src[1]}; ${this.alu(I.ALU_AND, size, ["vl", "vh"], ["sl", "sh"])} ${endCheck()} }`);
        return true;
      }
      case I.OP_INC: case I.OP_DEC: case I.OP_NEG: case I.OP_NOT: {
        let pre: string;
        if (mem) {
          pre = `${this.ea(i)} const vl = m.rmw(${i.seg}, el, eh, ${size}); if (m.fVec >= 0) ${this.fault(k)} const vh = ${size === 8 ? "m.vh" : "0"};`;
        } else {
          const [lo, hi] = this.readReg(i.rm, size);
          pre = `const vl = ${lo}, vh = ${hi};`;
        }
        const put = (lo: string, hi: string) => (mem ? `m.commit(${lo}, ${hi}); ${RELOAD} ${endCheck()}` : this.writeReg(i.rm, size, lo, hi));
        if (i.op === I.OP_NOT) {
          const mk = size === 8 || size === 4 ? "" : size === 2 ? " & 65535" : " & 255";
          o.push(`{ ${pre} ${put(`(~vl${mk})`, size === 8 ? "~vh" : "0")} }`);
          return true;
        }
        if (i.op === I.OP_NEG) {
          const s = this.alu(I.ALU_SUB, size, ["0", "0"], ["vl", "vh"]);
          o.push(`{ ${pre} ${s} ${put("pr_l", size === 8 ? "pr_h" : "0")} }`);
          return true;
        }
        const dec = i.op === I.OP_DEC;
        const cf = this.cfExpr();
        let s: string;
        if (size === 8) {
          s = dec
            ? "pa_l = vl; pa_h = vh; pb_l = 1; pb_h = 0; pr_l = (vl - 1) | 0; pr_h = vl === 0 ? (vh - 1) | 0 : vh;"
            : "pa_l = vl; pa_h = vh; pb_l = 1; pb_h = 0; pr_l = (vl + 1) | 0; pr_h = pr_l === 0 ? (vh + 1) | 0 : vh;";
        } else {
          const mk = size === 4 ? "| 0" : size === 2 ? "& 65535" : "& 255";
          s = `pa_l = vl; pb_l = 1; pr_l = (vl ${dec ? "-" : "+"} 1) ${mk};`;
        }
        this.flag = { op: dec ? LAZY_DEC : LAZY_INC, size };
        o.push(`{ ${pre} const c0 = ${cf}; ${s} pc = c0; ${put("pr_l", size === 8 ? "pr_h" : "0")} }`);
        return true;
      }
      case I.OP_PUSH_R: case I.OP_PUSH_I: {
        if (size !== 8) return false;
        const [lo, hi] = i.op === I.OP_PUSH_R ? this.readReg(i.reg, 8) : [lit(i.immLo), lit(i.immHi)];
        const sl = this.rl(4), sh = this.rh(4);
        this.written.add(4);
        o.push(`{ const vl = ${lo}, vh = ${hi}; const nl = (${sl} - 8) | 0, nh = (${sh} - ((${sl} >>> 0) < 8 ? 1 : 0)) | 0;` +
          ` ${this.store(SS, 8, "nl", "nh", "vl", "vh", k)} ${sl} = nl; ${sh} = nh;` +
          ` if (be) ${this.exitAfter(k, lit(i.nextLo), lit(i.nextHi), 2)} }`);
        return true;
      }
      case I.OP_POP_R: {
        if (size !== 8) return false;
        const sl = this.rl(4), sh = this.rh(4);
        this.written.add(4);
        o.push(`{ ${this.load(SS, 8, sl, sh, k)}` +
          ` const nl = (${sl} + 8) | 0; ${sh} = (${sh} + ((nl >>> 0) < (${sl} >>> 0) ? 1 : 0)) | 0; ${sl} = nl;` +
          ` ${this.writeReg(i.reg, 8, "vl", "vh")} if (be) ${this.exitAfter(k, lit(i.nextLo), lit(i.nextHi), 2)} }`);
        return true;
      }
      case I.OP_SWAPGS: {
        const b = GS * SEG_STRIDE;
        o.push(`if (m.cpl !== 0) ${this.gpFault(k)} { const sg = m.sg, ms = m.msr, a = sg[${b + BASE_LO}], c = sg[${b + BASE_HI}];` +
          ` sg[${b + BASE_LO}] = ms[8]; sg[${b + BASE_HI}] = ms[9]; ms[8] = a; ms[9] = c; }`);
        return true;
      }
      default:
        return false;
    }
  }

  /** The block's last instruction when it is a near branch; emits the exits. */
  private emitBranch(k: number): void {
    const i = this.b.insns[k]!;
    const o = this.out;
    const N = this.n;
    const canon = (hi: number) => hi >> 15 === hi >> 31;
    const go = (lo: string, hi: string) => this.exitAfter(k, lo, hi);
    const loopBack = () => {
      const store = this.flagsLiveAtHead() ? this.flagStore() : "";
      return `if (n + ${2 * N} <= budget) { ${store} n += ${N}; continue; }`;
    };
    switch (i.op) {
      case I.OP_JMP:
        if (!canon(i.tgtHi)) {
          o.push(this.gpFault(k));
          return;
        }
        if (this.loop) o.push(loopBack());
        o.push(go(lit(i.tgtLo), lit(i.tgtHi)));
        return;
      case I.OP_JCC: {
        const [pre, c] = this.cond(i.sub);
        o.push(pre);
        const taken = !canon(i.tgtHi) ? this.gpFault(k) : `{ ${this.loop ? loopBack() : ""} ${go(lit(i.tgtLo), lit(i.tgtHi))} }`;
        o.push(`if (${c}) ${taken}`);
        o.push(go(lit(i.nextLo), lit(i.nextHi)));
        return;
      }
      case I.OP_CALL: case I.OP_CALL_RM: {
        if (i.osz !== 8) break;
        let tgt: string;
        if (i.op === I.OP_CALL) {
          if (!canon(i.tgtHi)) {
            o.push(this.gpFault(k));
            return;
          }
          tgt = `const tl = ${lit(i.tgtLo)}, th = ${lit(i.tgtHi)};`;
        } else {
          tgt = `${this.readRm(i, k, 8)} const tl = vl, th = vh; if ((th >> 15) !== (th >> 31)) ${this.gpFault(k)}`;
        }
        const sl = this.rl(4), sh = this.rh(4);
        this.written.add(4);
        o.push(`{ ${tgt} const nl = (${sl} - 8) | 0, nh = (${sh} - ((${sl} >>> 0) < 8 ? 1 : 0)) | 0;` +
          ` ${this.store(SS, 8, "nl", "nh", lit(i.nextLo), lit(i.nextHi), k)}` +
          ` ${sl} = nl; ${sh} = nh; ${go("tl", "th")} }`);
        return;
      }
      case I.OP_RET: {
        if (i.osz !== 8) break;
        const sl = this.rl(4), sh = this.rh(4);
        this.written.add(4);
        const rel = 8 + i.immLo;
        o.push(`{ ${this.load(SS, 8, sl, sh, k)} const tl = vl, th = vh;` +
          ` if ((th >> 15) !== (th >> 31)) ${this.gpFault(k)}` +
          ` const nl = (${sl} + ${rel}) | 0; ${sh} = (${sh} + ((nl >>> 0) < (${sl} >>> 0) ? 1 : 0)) | 0; ${sl} = nl; ${go("tl", "th")} }`);
        return;
      }
      case I.OP_JMP_RM: {
        if (i.osz !== 8) break;
        o.push(`{ ${this.readRm(i, k, 8)} if ((vh >> 15) !== (vh >> 31)) ${this.gpFault(k)} ${go("vl", "vh")} }`);
        return;
      }
    }
    o.push(this.stopBefore(k));
  }

  /** Leaves instruction k to the engine. */
  private stopBefore(k: number): string {
    return `{ @WB@ ${this.flagStore()} r[32] = ${lit(this.b.insns[k]!.ripLo)}; r[33] = ${lit(this.b.insns[k]!.ripHi)}; m.bins = I[${k}]; m.bstat = ${ST_STOP}; return n + ${k}; }`;
  }

  /**
   * The last instruction is a system instruction (SYSCALL, SYSRET, IRET, MOV CR, ...): run its
   * interpreter handler here with the engine's per-instruction bookkeeping (TF was 0 and no shadow
   * was active when the block started, so: the shadow it creates, and SYSCALL/SYSRET's trap on the
   * new TF), then leave the block. An unsupported outcome is left to the engine (ST_STOP).
   */
  private terminalCall(k: number): void {
    const i = this.b.insns[k]!;
    const pre = `@WB@ ${this.flagStore()}`;
    this.flag = null;
    const trap = i.op === I.OP_SYSCALL || i.op === I.OP_SYSRET ? "if ((m.flags & 256) !== 0) m.pendingDebugTrap = true;" : "";
    this.out.push(`${pre} r[32] = ${lit(i.nextLo)}; r[33] = ${lit(i.nextHi)}; m.nextShadow = 0;` +
      ` const s = H[${i.op}](m, I[${k}]);` +
      ` if (s === 1 || s === 4) { r[32] = ${lit(i.ripLo)}; r[33] = ${lit(i.ripHi)}; if (s === 4) m.bins = I[${k}]; m.bstat = s === 1 ? 1 : ${ST_STOP}; return n + ${k}; }` +
      ` m.shadow = m.nextShadow; ${trap} if (s === 3) m.halted = true; m.bstat = 2; return n + ${k + 1};`);
  }

  /**
   * The last instruction is INT n or INT3: delivered here (deliver.ts deliverSoft: one attempt,
   * same checks and frame as the engine's path; the step retires with the delivery). When the
   * attempt raises an exception the machine is as it was (but A/D bits): the instruction is left
   * to the engine (ST_STOP), which repeats the attempt and delivers what it raises.
   */
  private softInt(k: number): void {
    const i = this.b.insns[k]!;
    const vector = i.op === I.OP_INT3 ? 3 : i.immLo & 0xff;
    const pre = `@WB@ ${this.flagStore()}`;
    this.flag = null;
    this.out.push(`${pre} r[32] = ${lit(i.ripLo)}; r[33] = ${lit(i.ripHi)};` +
      ` if (DS(m, ${vector}, ${lit(i.nextLo)}, ${lit(i.nextHi)})) { m.bstat = 2; return n + ${k + 1}; }` +
      ` m.bins = I[${k}]; m.bstat = ${ST_STOP}; return n + ${k};`);
  }

  /** Calls the interpreter handler for instruction k (registers and flags through the Machine). */
  private fallback(k: number): void {
    const i = this.b.insns[k]!;
    const pre = `@WB@ ${this.flagStore()}`;
    this.flag = null;
    this.out.push(`${pre} r[32] = ${lit(i.nextLo)}; r[33] = ${lit(i.nextHi)};` +
      ` if (H[${i.op}](m, I[${k}]) === 1) { r[32] = ${lit(i.ripLo)}; r[33] = ${lit(i.ripHi)}; m.bstat = 1; return n + ${k}; }` +
      ` @RL@ ${RELOAD} if (be) { m.bstat = 2; return n + ${k + 1}; }`);
    // The handler may read or write any register.
    for (let r = 0; r < 16; r++) {
      if (this.touchesReg(i, r)) {
        this.used.add(r);
        this.written.add(r);
      }
    }
  }

  private touchesReg(i: Insn, r: number): boolean {
    // Conservative: every register (cheap only when the block uses few).
    void i;
    void r;
    return true;
  }

  /** True when the flags at the top of a loop iteration can be observed before the first
   *  instruction that rewrites all of them (then the back edge must store them). */
  private flagsLiveAtHead(): boolean {
    for (const i of this.b.insns) {
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

  source(): string {
    const insns = this.b.insns;
    const N = this.n;
    for (let k = 0; k < N; k++) {
      const i = insns[k]!;
      if (k === N - 1 && endsBlock(i.op)) {
        if (NATIVE_ENDERS.has(i.op)) this.emitBranch(k);
        else if (i.op === I.OP_INT || i.op === I.OP_INT3) this.softInt(k);
        else if (ENGINE_ENDERS.has(i.op)) this.out.push(this.stopBefore(k));
        else this.terminalCall(k);
        break;
      }
      if (i.op === I.OP_JMP) {
        // A jump the block followed (blocks.ts): the next instruction is its target.
        continue;
      }
      if (!this.emit(k)) this.fallback(k);
      if (k === N - 1) {
        // Block cut at the page end or MAX_BLOCK.
        this.out.push(this.exitAfter(k, lit(i.nextLo), lit(i.nextHi)));
      }
    }
    const used = [...this.used].sort((a, b) => a - b);
    const written = [...this.written].sort((a, b) => a - b);
    const load = used.map((n) => `let r${n}l = r[${2 * n}], r${n}h = r[${2 * n + 1}];`).join(" ");
    const reload = used.map((n) => `r${n}l = r[${2 * n}]; r${n}h = r[${2 * n + 1}];`).join(" ");
    const wb = written.map((n) => `r[${2 * n}] = r${n}l; r[${2 * n + 1}] = r${n}h;`).join(" ");
    const body = this.out.join("\n").split("@WB@").join(wb).split("@RL@").join(reload);
    return `"use strict";
return function block(m, budget) {
const r = m.r, T = m.tlb;
let M = m.mem32, M8 = m.mem8;
let lpt = -1, lph = 0, lpc = 0, lpo = 0, be = false;
let pa_l = 0, pa_h = 0, pb_l = 0, pb_h = 0, pr_l = 0, pr_h = 0, pc = 0;
${load}
let n = 0;
for (;;) {
${body}
}
};`;
  }
}

export type { Machine };
