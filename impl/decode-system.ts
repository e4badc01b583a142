// Decoding of the two-byte system opcodes (SDM Vol. 2D Table A-6, opcode-extension groups 6 and 7;
// docs/model-choices.md rows "Decoding: 0F 00, 0F 01", "CPU features", "MOV DR", "FSGSBASE",
// "PCID, INVPCID"): SLDT STR LLDT LTR VERR VERW, SGDT SIDT LGDT LIDT SMSW LMSW INVLPG and the 0F 01
// register forms, MOV DR, WBNOINVD, RDPMC, SYSENTER, SYSEXIT, RDFSBASE…WRGSBASE, INVPCID, and the
// encodings of the features the modelled CPU lacks (VMX, SVM, SMX, SGX, XSAVES, ...), which are #UD
// at any CPL. Every 0F 00 and 0F 01 encoding decodes to an instruction or #UD — none is
// `unsupported`. Called by decode.ts for the second opcode byte `op`; false when `op` is not one
// of these (decode.ts goes on with its own map).
import type { Insn } from "./insn.ts";
import * as insnModule from "./insn.ts";
import { FS, GS } from "./consts.ts";

// Module-local copies of the imported constants (why: consts.ts, "Using these constants").
const {
  OP_UD, OP_SLDT_STR, OP_LLDT, OP_LTR, OP_VERR_VERW, OP_SGDT, OP_SIDT, OP_LGDT, OP_LIDT,
  OP_SMSW, OP_LMSW, OP_INVLPG, OP_SWAPGS, OP_RDTSCP, OP_CLAC, OP_STAC, OP_XGETBV, OP_XSETBV,
  OP_MOV_FROM_DR, OP_MOV_TO_DR, OP_WBINVD, OP_RDPMC, OP_SYSENTER, OP_SYSEXIT, OP_RDFSGSBASE,
  OP_WRFSGSBASE, OP_INVPCID, MODE_64,
} = insnModule;

/** The byte cursor of decode.ts (only what is used here). */
export interface ByteCursor {
  readonly buf: Uint8Array;
  readonly start: number;
  readonly avail: number;
  p: number;
  u8(): number;
}

/** The next byte without consuming it, or -1 when it is not available yet (decode then needs more
 *  bytes and the consuming read asks for them). */
function peek(r: ByteCursor): number {
  return r.p < r.avail ? r.buf[r.start + r.p]! : -1;
}

/**
 * Decodes 0F `op` when it is a system opcode. `modrm(size)` reads ModRM/SIB/displacement (decode.ts);
 * `osz` is the ordinary operand size, `prefix66` whether a 66h prefix was seen, rexR/rexB the REX
 * bits already shifted to register-number weight.
 */
export function decodeSystem0F(r: ByteCursor, i: Insn, mode: number, op: number, modrm: (size: number) => void,
  osz: number, rexB: number, rexR: number, prefix66: boolean): boolean {
  const m64 = mode === MODE_64;
  switch (op) {
    case 0x00: {
      // Group 6 (prefixes ignored; F2 /6 is LKGS, absent).
      modrm(osz);
      const ext = i.reg & 7;
      i.operandSize = 2;
      switch (ext) {
        case 0: case 1:
          i.op = OP_SLDT_STR;
          i.sub = ext;
          if (i.mod === 3) i.operandSize = osz; // a register destination takes the operand size
          break;
        case 2: i.op = OP_LLDT; break;
        case 3: i.op = OP_LTR; break;
        case 4: case 5:
          i.op = OP_VERR_VERW;
          i.sub = ext - 4;
          break;
        default: i.op = OP_UD;
      }
      return true;
    }
    case 0x01:
      modrm(osz);
      if (i.mod !== 3) group7Memory(i);
      else group7Register(i, m64, osz, prefix66);
      return true;
    case 0x09:
      // WBINVD; F3: WBNOINVD (the same, with no caches).
      i.op = OP_WBINVD;
      return true;
    case 0x21: case 0x23: {
      // MOV r, DRn / MOV DRn, r: always the register form; REX.R names no debug register (#UD).
      const mb = r.u8();
      i.mod = 3;
      i.reg = (mb >> 3) & 7;
      i.rm = (mb & 7) | rexB;
      i.operandSize = m64 ? 8 : 4;
      i.op = rexR !== 0 ? OP_UD : op === 0x21 ? OP_MOV_FROM_DR : OP_MOV_TO_DR;
      return true;
    }
    case 0x33:
      i.op = OP_RDPMC;
      return true;
    case 0x34:
      i.op = OP_SYSENTER;
      return true;
    case 0x35:
      i.op = OP_SYSEXIT;
      return true;
    case 0x37:
      // GETSEC (SMX: absent).
      i.op = OP_UD;
      return true;
    case 0x78: case 0x79:
      // VMREAD / VMWRITE without a prefix (VMX: absent); 66 / F2 are SSE4a, outside the model.
      if (prefix66 || i.rep !== 0) return false;
      modrm(8);
      i.op = OP_UD;
      return true;
    case 0xae: {
      // F3 with a register operand: RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE (/0–/3), PTWRITE,
      // INCSSP, UMONITOR, reserved (/4–/7: absent or reserved, #UD). Other forms: not here.
      const mb = peek(r);
      if (i.rep !== 0xf3 || mb < 0 || mb >> 6 !== 3) return false;
      modrm(osz);
      const ext = i.reg & 7;
      if (ext >= 4 || !m64) {
        i.op = OP_UD;
        return true;
      }
      i.op = ext < 2 ? OP_RDFSGSBASE : OP_WRFSGSBASE;
      i.reg = (ext & 1) === 0 ? FS : GS;
      i.operandSize = i.rexW ? 8 : 4;
      return true;
    }
    case 0xc7: {
      // Memory forms /3 XRSTORS, /5 XSAVES, /6 VMPTRLD / VMCLEAR / VMXON, /7 VMPTRST: absent (#UD).
      const mb = peek(r);
      if (mb < 0 || mb >> 6 === 3) return false;
      const ext = (mb >> 3) & 7;
      if (ext !== 3 && ext !== 5 && ext !== 6 && ext !== 7) return false;
      modrm(8);
      i.op = OP_UD;
      return true;
    }
    case 0x38: {
      // 0F 38 80 INVEPT, 81 INVVPID (VMX: absent), 82 INVPCID (66, memory operand only).
      const b3 = peek(r);
      if (b3 < 0x80 || b3 > 0x82) return false;
      r.u8();
      modrm(16);
      if (b3 !== 0x82 || !prefix66 || i.rep !== 0 || i.mod === 3) {
        i.op = OP_UD;
        return true;
      }
      i.op = OP_INVPCID;
      i.operandSize = m64 ? 8 : 4; // the type register (REX.W ignored)
      return true;
    }
    default:
      return false;
  }
}

/** 0F 01 with a memory operand (66/F2/F3 ignored). */
function group7Memory(i: Insn): void {
  switch (i.reg & 7) {
    case 0: i.op = OP_SGDT; break;
    case 1: i.op = OP_SIDT; break;
    case 2: i.op = OP_LGDT; break;
    case 3: i.op = OP_LIDT; break;
    case 4:
      i.op = OP_SMSW;
      i.operandSize = 2;
      break;
    case 6:
      i.op = OP_LMSW;
      i.operandSize = 2;
      break;
    case 7: i.op = OP_INVLPG; break;
    default: i.op = OP_UD; // /5 (F3: RSTORSSP, absent)
  }
}

/** 0F 01 with mod = 11: the few modelled register forms; every other one is #UD (reserved, or an
 *  instruction of a feature the modelled CPU lacks: VMX, SVM, SGX, MONITOR/MWAIT, ...). */
function group7Register(i: Insn, m64: boolean, osz: number, prefix66: boolean): void {
  const ext = i.reg & 7;
  const rm = i.rm & 7;
  const prefixed = prefix66 || i.rep !== 0;
  i.op = OP_UD;
  switch (ext) {
    case 1: // C8–CF: CLAC (CA), STAC (CB) without a prefix
      if (!prefixed && rm === 2) i.op = OP_CLAC;
      else if (!prefixed && rm === 3) i.op = OP_STAC;
      return;
    case 2: // D0–D7: XGETBV (D0), XSETBV (D1) without a prefix
      if (!prefixed && rm === 0) i.op = OP_XGETBV;
      else if (!prefixed && rm === 1) i.op = OP_XSETBV;
      return;
    case 4: // E0–E7: SMSW r16/r32/r64 (F2/F3 ignored)
      i.op = OP_SMSW;
      i.operandSize = osz;
      return;
    case 6: // F0–F7: LMSW r16 (prefixes ignored)
      i.op = OP_LMSW;
      i.operandSize = 2;
      return;
    case 7: // F8 SWAPGS (64-bit mode only), F9 RDTSCP; prefixes ignored
      if (rm === 0 && m64) i.op = OP_SWAPGS;
      else if (rm === 1) i.op = OP_RDTSCP;
      return;
  }
}
