// Cross-check of the spec decoder against iced-x86 (Intel decoding rules, its default options) on
// random byte strings biased toward the modelled opcodes. Where both decode an instruction, length,
// mnemonic, operand size and every operand must agree; where the spec raises #UD or the 15-byte #GP,
// iced must call the bytes invalid; where the spec decodes an instruction, iced must not call it
// invalid. `unsupported` is never compared. RINGSPEC_FUZZ_RUNS scales the run (default 3000),
// RINGSPEC_FUZZ_SEED changes the seed (default 42).
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type * as Iced from "iced-x86";
import { decode } from "../../../spec/decode/decode.ts";
import type { Instruction, Operand } from "../../../spec/decode/instruction.ts";
import { describeFault } from "../../../spec/fault.ts";
import { envInteger } from "../../helpers/env.ts";

const iced = createRequire(import.meta.url)("iced-x86") as typeof Iced;
const RUNS = envInteger("RINGSPEC_FUZZ_RUNS", 3000, 1);
const SEED = envInteger("RINGSPEC_FUZZ_SEED", 42, -(2 ** 31), 2 ** 31 - 1);
const IP = 0x1000n;

const hex = (bytes: ArrayLike<number>) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

// ---- iced registers → the spec's operand shapes -------------------------------------------------

const GPR_NAMES: readonly (readonly string[])[] = [
  ["AL", "CL", "DL", "BL", "SPL", "BPL", "SIL", "DIL", "R8L", "R9L", "R10L", "R11L", "R12L", "R13L", "R14L", "R15L"],
  ["AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8W", "R9W", "R10W", "R11W", "R12W", "R13W", "R14W", "R15W"],
  ["EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI", "R8D", "R9D", "R10D", "R11D", "R12D", "R13D", "R14D", "R15D"],
  ["RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"],
];
const REGISTER_TEXT = new Map<number, string>();
GPR_NAMES.forEach((names, i) => names.forEach((name, reg) => REGISTER_TEXT.set(iced.Register[name as keyof typeof iced.Register], `r${reg}:${1 << i}`)));
["AH", "CH", "DH", "BH"].forEach((name, i) => REGISTER_TEXT.set(iced.Register[name as keyof typeof iced.Register], `r${i + 4}:1h`));
["ES", "CS", "SS", "DS", "FS", "GS"].forEach((name) => REGISTER_TEXT.set(iced.Register[name as keyof typeof iced.Register], `s:${name.toLowerCase()}`));
for (let n = 0; n < 16; n++) REGISTER_TEXT.set(iced.Register[`CR${n}` as keyof typeof iced.Register], `cr${n}`);
for (let n = 0; n < 8; n++) REGISTER_TEXT.set(iced.Register[`DR${n}` as keyof typeof iced.Register], `dr${n}`);

/**
 * iced-x86's CPUID feature names of the instructions the modelled CPU lacks (docs/model-choices.md,
 * "CPU features"): where the spec raises #UD for an absent feature (DECODE-FEATURE), iced must decode
 * an instruction that needs one of these.
 */
const ABSENT_FEATURES: ReadonlySet<string> = new Set([
  "VMX", "INVEPT", "INVVPID", "SVM", "SKINIT_or_SVM", "SEV_ES", "SEV_SNP", "RMPQUERY", "SMX", "SGX1", "OSS", "MONITOR", "MONITORX",
  "RTM", "HLE_or_RTM", "PKU", "CET_SS", "UINTR", "FRED", "LKGS", "SERIALIZE", "TSXLDTRK", "PCONFIG", "WRMSRNS", "MSRLIST",
  "TDX", "TSE", "XSAVES", "PTWRITE", "WAITPKG", "CLZERO", "RDPRU", "INVLPGB", "MCOMMIT",
]);

function icedRegister(r: Iced.Register): string {
  return REGISTER_TEXT.get(r) ?? `?${iced.Register[r]}`;
}

const mask = (bits: number) => (1n << BigInt(bits)) - 1n;

/** One operand as text, in a form both decoders can be brought to. */
function icedOperand(ins: Iced.Instruction, i: number, mode64: boolean): string {
  const kind = ins.opKind(i);
  const K = iced.OpKind;
  switch (kind) {
    case K.Register: return icedRegister(ins.opRegister(i));
    case K.NearBranch16: case K.NearBranch32: case K.NearBranch64: return `b${ins.nearBranchTarget.toString(16)}`;
    case K.Immediate8: return `i${ins.immediate(i).toString(16)}:1`;
    case K.Immediate16: case K.Immediate8to16: return `i${(ins.immediate(i) & mask(16)).toString(16)}:2`;
    case K.Immediate32: case K.Immediate8to32: return `i${(ins.immediate(i) & mask(32)).toString(16)}:4`;
    case K.Immediate64: case K.Immediate8to64: case K.Immediate32to64: return `i${(ins.immediate(i) & mask(64)).toString(16)}:8`;
    case K.Memory: {
      const base = ins.memoryBase;
      const size = iced.MemorySizeExt.size(ins.memorySize);
      if (base === iced.Register.RIP || base === iced.Register.EIP) {
        const bits = base === iced.Register.RIP ? 64 : 32;
        return `m${bits}[${segmentText(ins.memorySegment, null, mode64)}:ip->${ins.memoryDisplacementU64.toString(16)}]:${size}`;
      }
      const baseReg = base === iced.Register.None ? null : registerNumber(base);
      const index = ins.memoryIndex === iced.Register.None ? "-" : `${registerNumber(ins.memoryIndex)}*${ins.memoryIndexScale}`;
      // Address size: from the base or index register, else from the displacement (8 = 64-bit).
      const sized = base !== iced.Register.None ? base : ins.memoryIndex;
      const bits = sized !== iced.Register.None ? (icedRegister(sized).endsWith(":8") ? 64 : 32) : ins.memoryDisplSize === 8 ? 64 : 32;
      const disp = (ins.memoryDisplacementU64 & mask(bits)).toString(16);
      return `m${bits}[${segmentText(ins.memorySegment, baseReg, mode64)}:${baseReg ?? "-"}+${index}+${disp}]:${size}`;
    }
    // The string instructions' implicit operands: DS:[RSI] (segment overridable) and ES:[RDI].
    case K.MemorySegSI: case K.MemorySegESI: case K.MemorySegRSI: case K.MemoryESDI: case K.MemoryESEDI: case K.MemoryESRDI: {
      const source = kind === K.MemorySegSI || kind === K.MemorySegESI || kind === K.MemorySegRSI;
      const bits = kind === K.MemorySegRSI || kind === K.MemoryESRDI ? 64 : kind === K.MemorySegESI || kind === K.MemoryESEDI ? 32 : 16;
      const seg = source ? segmentText(ins.memorySegment, null, mode64) : "es";
      return `m${bits}[${seg}:${source ? 6 : 7}+-+0]:${iced.MemorySizeExt.size(ins.memorySize)}`;
    }
    default: return `?kind${K[kind]}`;
  }
}

function registerNumber(r: Iced.Register): number {
  const text = icedRegister(r);
  return Number(text.slice(1, text.indexOf(":")));
}
/** In 64-bit mode ES/CS/SS/DS overrides are ignored: iced reports the prefix, the spec the default. */
function segmentText(seg: Iced.Register, base: number | null, mode64: boolean): string {
  const name = icedRegister(seg).slice(2);
  if (mode64 && name !== "fs" && name !== "gs") return base === 4 || base === 5 ? "ss" : "ds";
  return name;
}

function specOperand(op: Operand, insn: Instruction, mode64: boolean): string {
  const next = IP + BigInt(insn.length);
  switch (op.kind) {
    case "reg": return `r${op.reg}:${op.size}${op.high8 ? "h" : ""}`;
    case "imm": return `i${op.value.toString(16)}:${op.size}`;
    case "rel": return `b${((next + op.disp) & mask(8 * insn.operandSize)).toString(16)}`;
    case "sreg": return `s:${op.sreg}`;
    case "cr": return `cr${op.cr}`;
    case "dr": return `dr${op.dr}`;
    case "port": return op.port === "dx" ? "r2:2" : `i${op.port.toString(16)}:1`;
    case "mem": {
      const bits = 8 * op.addressSize;
      if (op.ripRelative) return `m${bits}[${op.segment}:ip->${((next + op.disp) & mask(bits)).toString(16)}]:${op.size}`;
      const index = op.index === null ? "-" : `${op.index}*${op.scale}`;
      return `m${bits}[${op.segment}:${op.base ?? "-"}+${index}+${(op.disp & mask(bits)).toString(16)}]:${op.size}`;
    }
  }
}

// ---- mnemonics ----------------------------------------------------------------------------------

/** The condition codes (tttn) in encoding order, as iced-x86 spells them in SETcc/CMOVcc. */
const CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
/** String instructions: iced names the element size (movsb, stosq, ...); the spec has the size. */
const STRINGS = /^(movs|stos|lods|cmps|scas)[bwdq]$/;

function icedMnemonic(ins: Iced.Instruction): string {
  const name = iced.Mnemonic[ins.mnemonic].toLowerCase();
  for (const family of ["cmov", "set"]) {
    const condition = name.startsWith(family) ? CONDITIONS.indexOf(name.slice(family.length)) : -1;
    if (condition >= 0) return `${family === "set" ? "setcc" : "cmovcc"}.${condition}`;
  }
  const string = STRINGS.exec(name);
  if (string !== null) return string[1]!;
  if (name === "jecxz") return "jrcxz";
  if (name.startsWith("prefetcht") || name === "prefetchnta") return "prefetch";
  if (name === "endbr64" || name === "endbr32") return "endbr";
  // docs/model-choices.md: without BMI1/LZCNT, F3 0F BC/BD execute as BSF/BSR.
  if (name === "tzcnt") return "bsf";
  if (name === "lzcnt") return "bsr";
  const ops = Array.from({ length: ins.opCount }, (_, i) => (ins.opKind(i) === iced.OpKind.Register ? icedRegister(ins.opRegister(i)) : ""));
  if (ins.isJccShortOrNear) return "jcc";
  if (ins.isJmpFarIndirect) return "jmp_far";
  if (name === "mov") {
    if (ops[0]?.startsWith("cr")) return "mov_to_cr";
    if (ops[1]?.startsWith("cr")) return "mov_from_cr";
    if (ops[0]?.startsWith("dr")) return "mov_to_dr";
    if (ops[1]?.startsWith("dr")) return "mov_from_dr";
    if (ops[0]?.startsWith("s:")) return "mov_to_sreg";
    if (ops[1]?.startsWith("s:")) return "mov_from_sreg";
  }
  if ((name === "push" || name === "pop") && ops[0]?.startsWith("s:")) return `${name}_sreg`;
  if (name === "sal") return "shl";
  if (name === "cwde" || name === "cdqe") return "cbw";
  if (name === "cdq" || name === "cqo") return "cwd";
  for (const family of ["iret", "pushf", "popf", "sysret", "sysexit"]) if (name.startsWith(family)) return family;
  return name;
}

/** Operand sizes iced names in the code (Iretq, Pushfw, Retnd, Cdqe, ...), where operands don't show them. */
function icedOperandSize(ins: Iced.Instruction): number | undefined {
  if (!operandSizeByCode.has(ins.code)) operandSizeByCode.set(ins.code, operandSizeOfCode(iced.Code[ins.code]));
  return operandSizeByCode.get(ins.code);
}
/** icedOperandSize by code, each worked out once (a regular expression over the code's name). */
const operandSizeByCode = new Map<number, number | undefined>();
function operandSizeOfCode(code: string): number | undefined {
  const suffix = /^(?:Iret|Retf|Retn|Pushf|Popf|Sysret|Sysexit|Leave)([wdq])|^(?:Push|Pop)([wdq])_[EFG]S$/.exec(code);
  const letter = suffix?.[1] ?? suffix?.[2];
  if (letter !== undefined) return { w: 2, d: 4, q: 8 }[letter];
  return ({ Cbw: 2, Cwde: 4, Cdqe: 8, Cwd: 2, Cdq: 4, Cqo: 8 } as Record<string, number>)[code];
}

/** iced's NOP encodings of 90 carry operands (xchg ax,ax); the spec's NOP has none. */
const NOP_90 = new Set(["Nopw", "Nopd", "Nopq"]);

// ---- the comparison -----------------------------------------------------------------------------

const STRING_MNEMONICS: ReadonlySet<string> = new Set(["movs", "stos", "lods", "cmps", "scas"]);
/** iced names the full register of MOV Sreg,r32/m16 and LTR r32/m16 (see check). */
const LOW_16_OPERAND: ReadonlySet<string> = new Set(["mov_to_sreg", "ltr", "lldt", "verr", "verw", "lmsw"]);

interface Tally { compared: number; ud: number; unsupported: number; absent: number; }

const LEGACY_PREFIXES: ReadonlySet<number> = new Set([0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65]);

/** Whether the prefixes before the opcode include LOCK. */
function lockPrefixed(bytes: Uint8Array, mode64: boolean): boolean {
  for (const b of bytes) {
    if (b === 0xf0) return true;
    if (!LEGACY_PREFIXES.has(b) && !(mode64 && (b & 0xf0) === 0x40)) return false;
  }
  return false;
}

function check(bytes: Uint8Array, mode64: boolean, tally: Tally): void {
  const spec = decode((i) => {
    const b = bytes[i];
    if (b === undefined) throw new Error("decoder read past the buffer");
    return b;
  }, mode64);
  const decoder = new iced.Decoder(mode64 ? 64 : 32, bytes, iced.DecoderOptions.None);
  decoder.ip = IP;
  const ins = decoder.decode();
  try {
    // Here and below, the messages are made and expect called only when the check fails (4,500
    // cases; vitest's expect and the texts cost more than the checks): the same assertions.
    const label = () => `${mode64 ? "64" : "32"}-bit ${hex(bytes.subarray(0, 15))}`;
    if (spec.kind === "unsupported") {
      tally.unsupported++;
      return;
    }
    if (spec.kind === "fault") {
      tally.ud++;
      if (!(spec.vector === 6 || (spec.vector === 13 && spec.rule === "DECODE-LENGTH"))) expect(false, `${label()}: ${describeFault(spec)}`).toBe(true);
      if (spec.rule === "DECODE-FEATURE" && !(ins.isInvalid && lockPrefixed(bytes, mode64))) {
        // A feature the modelled CPU lacks: iced decodes an instruction of that feature (LOCK on it
        // is #UD for both).
        tally.absent++;
        if (ins.isInvalid) expect(ins.isInvalid, `${label()}: spec ${describeFault(spec)} but iced says invalid`).toBe(false);
        const features = Array.from(ins.cpuidFeatures(), (f) => iced.CpuidFeature[f] ?? "?");
        if (!features.some((f) => ABSENT_FEATURES.has(f))) expect(false, `${label()}: spec ${describeFault(spec)} but iced decodes ${ins.toString()} [${features.join(", ")}]`).toBe(true);
        return;
      }
      if (!ins.isInvalid) expect(ins.isInvalid, `${label()}: spec ${describeFault(spec)} but iced decodes ${ins.toString()}`).toBe(true);
      return;
    }
    if (ins.isInvalid) expect(ins.isInvalid, `${label()}: spec decodes ${spec.mnemonic} but iced says invalid`).toBe(false);
    tally.compared++;
    const text = (mnemonic: string, size: number | undefined, ops: string[]) => `${mnemonic}${size === undefined ? "" : `/${size}`} ${ops.join(", ")} (len ${spec.length})`;
    const icedSize = icedOperandSize(ins);
    let icedOps = NOP_90.has(iced.Code[ins.code]) ? [] : Array.from({ length: ins.opCount }, (_, i) => icedOperand(ins, i, mode64));
    // iced names the full register of MOV Sreg,r32/m16 and LTR r32/m16; only its low 16 bits are
    // read, and the spec says so with a 16-bit register operand.
    if (LOW_16_OPERAND.has(spec.mnemonic)) icedOps = icedOps.map((o) => o.replace(/^(r\d+):[48]$/, "$1:2"));
    // STOS/LODS/SCAS: iced lists the accumulator too; the spec's operands are the memory ones.
    if (spec.mnemonic === "stos" || spec.mnemonic === "lods" || spec.mnemonic === "scas") icedOps = icedOps.filter((o) => o.startsWith("m"));
    const icedText = text(icedMnemonic(ins), icedSize, icedOps).replace(/\(len \d+\)/, `(len ${ins.length})`);
    const mnemonic = spec.mnemonic === "setcc" || spec.mnemonic === "cmovcc" ? `${spec.mnemonic}.${spec.condition}` : spec.mnemonic;
    const specText = text(mnemonic, icedSize === undefined ? undefined : spec.operandSize, spec.operands.map((o) => specOperand(o, spec, mode64)));
    if (specText !== icedText) expect(specText, `${label()}: iced ${ins.toString()}`).toBe(icedText);
    if (spec.lock !== ins.hasLockPrefix) expect(spec.lock, label()).toBe(ins.hasLockPrefix);
    if (STRING_MNEMONICS.has(spec.mnemonic)) {
      // The repeat prefix the string instruction runs with: F3 ("rep", REPE for CMPS/SCAS) or F2.
      const rep = ins.hasRepPrefix || ins.hasRepePrefix ? "rep" : ins.hasRepnePrefix ? "repne" : null;
      if (spec.rep !== rep) expect(spec.rep, label()).toBe(rep);
    }
  } finally {
    ins.free();
    decoder.free();
  }
}

// ---- generators ---------------------------------------------------------------------------------

const legacyPrefix = fc.constantFrom(0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65);
const rexByte = fc.integer({ min: 0x40, max: 0x4f });
/** Opcode bytes the decoder models, plus the system groups: every 0F 01 register form, 0F 00,
 *  MOV CR/DR, SYSENTER/SYSEXIT, RDPMC, GETSEC, INVPCID, FSGSBASE, group 9, VMREAD/VMWRITE. */
const opcode = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [b]) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [0x0f, b]) },
  { weight: 1, arbitrary: fc.integer({ min: 0xc0, max: 0xff }).map((modrm) => [0x0f, 0x01, modrm]) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      [0x0f, 0x01, 0xf8], [0x0f, 0x01, 0xca], [0x0f, 0x01, 0xcb], [0x0f, 0x01, 0xd2], [0x0f, 0x01, 0xd3], [0xf3, 0x90], [0x0f, 0x20], [0x0f, 0x22],
      [0x8c], [0x8e], [0x0f, 0xba], [0x0f, 0x00], [0x0f, 0x01], [0x0f, 0x21], [0x0f, 0x23], [0x0f, 0x33], [0x0f, 0x34], [0x0f, 0x35], [0x0f, 0x37],
      [0x0f, 0x38, 0x82], [0x0f, 0x38, 0x80], [0x66, 0x0f, 0x38, 0x82], [0x66, 0x0f, 0x38, 0x81], [0xf3, 0x0f, 0xae], [0x0f, 0xc7], [0x66, 0x0f, 0xc7],
      [0xf3, 0x0f, 0xc7], [0x0f, 0x78], [0x0f, 0x79], [0xf3, 0x0f, 0x09], [0x0f, 0x09],
      // The kernel subset of issue 11: strings with REP/REPNE, CMPXCHG/XADD (LOCK), CMPXCHG8B/16B,
      // SETcc/CMOVcc, BSF/BSR (and F3 0F BC/BD), BSWAP, fences, PREFETCHh, ENDBR, LOOP/JRCXZ, LEAVE, CPUID.
      [0xf3, 0xa4], [0xf3, 0xa5], [0xf3, 0xaa], [0xf3, 0xab], [0xf2, 0xae], [0xf3, 0xa6], [0xf3, 0xac], [0xf2, 0xa5],
      [0xf0, 0x0f, 0xb1], [0xf0, 0x0f, 0xb0], [0xf0, 0x0f, 0xc1], [0xf0, 0x0f, 0xc0], [0x0f, 0xc7], [0xf0, 0x0f, 0xc7],
      [0x0f, 0x44], [0x0f, 0x4f], [0x0f, 0x94], [0x0f, 0x9e], [0x0f, 0xbc], [0xf3, 0x0f, 0xbc], [0xf3, 0x0f, 0xbd], [0x0f, 0xc8],
      [0x0f, 0xae, 0xf0], [0x0f, 0xae, 0xe8], [0x0f, 0xae, 0xf8], [0x0f, 0x18], [0xf3, 0x0f, 0x1e, 0xfa], [0xf3, 0x0f, 0x1e, 0xfb],
      [0xe2], [0xe3], [0x67, 0xe3], [0xc9], [0x66, 0xc9], [0x0f, 0xa2],
    ),
  },
);

function biased(mode64: boolean) {
  return fc
    .tuple(
      fc.array(fc.oneof({ weight: 3, arbitrary: legacyPrefix }, { weight: mode64 ? 1 : 0, arbitrary: rexByte }), { maxLength: 4 }),
      mode64 ? fc.option(rexByte, { freq: 2 }) : fc.constant(null),
      opcode,
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
    )
    .map(([prefixes, rex, op, tail]) => Uint8Array.from([...prefixes, ...(rex === null ? [] : [rex]), ...op, ...tail]));
}

const random = fc.uint8Array({ minLength: 16, maxLength: 16 });
/** Long prefix runs: around the 15-byte limit. */
const longPrefixes = fc
  .tuple(fc.array(legacyPrefix, { minLength: 10, maxLength: 15 }), opcode, fc.uint8Array({ minLength: 16, maxLength: 16 }))
  .map(([prefixes, op, tail]) => Uint8Array.from([...prefixes, ...op, ...tail]));

function run(mode64: boolean): Tally {
  const tally: Tally = { compared: 0, ud: 0, unsupported: 0, absent: 0 };
  const bytes = fc.oneof({ weight: 6, arbitrary: biased(mode64) }, { weight: 2, arbitrary: random }, { weight: 1, arbitrary: longPrefixes });
  fc.assert(fc.property(bytes, (b) => check(b, mode64, tally)), { seed: SEED, numRuns: mode64 ? RUNS : Math.ceil(RUNS / 2) });
  return tally;
}

describe("decoder agrees with iced-x86", () => {
  it("64-bit mode: lengths, operands and #UD agree on random biased byte strings", () => {
    const tally = run(true);
    // The comparison must actually compare: most biased strings are modelled instructions.
    expect(tally.compared).toBeGreaterThan(RUNS * 0.4);
    expect(tally.ud).toBeGreaterThan(RUNS * 0.02);
    expect(tally.absent).toBeGreaterThan(RUNS * 0.005);
  });

  it("compatibility mode: lengths, operands and #UD agree on random biased byte strings", () => {
    const tally = run(false);
    expect(tally.compared).toBeGreaterThan((RUNS / 2) * 0.3);
  });
});
