// The assembler: guest code written in TypeScript as iced-x86 instructions, with labels, data
// directives and alignment, encoded by iced-x86's BlockEncoder, which resolves branches (forward and
// backward, short or near as the distance needs) and RIP-relative operands to labelled instructions.
//
// How labels work. Every instruction handed to the BlockEncoder carries an identifying IP in a
// non-canonical range no real target can have; a branch or RIP-relative operand naming a label gets
// the identifying IP of the labelled instruction, and the BlockEncoder puts in the real distance.
// Values the BlockEncoder cannot patch — a label's address as an immediate or in data, alignment
// padding, labels in another section — come from the previous encoding pass; passes repeat until
// no address changes (usually one or two). Every pass decodes its output with iced-x86's decoder to
// find where each instruction landed, which also checks that the bytes mean what was written.
import {
  BlockEncoder, Decoder, Encoder, Instruction, MemoryOperand, Register, RegisterExt, iced,
  type CodeValue, type IcedInstruction, type IcedMemoryOperand, type RegisterValue,
} from "./iced.ts";

export type Label = string;
export type Bitness = 16 | 32 | 64;

/** A memory operand as data: [base + index·scale + displacement], optionally RIP-relative to a
 *  label (then `displacement` is added to the label's address). */
export interface Mem {
  readonly kind: "mem";
  readonly base: RegisterValue;
  readonly index: RegisterValue;
  readonly scale: 1 | 2 | 4 | 8;
  readonly displacement: bigint;
  /** iced-x86's displacement size: 0 none, 1 (disp8), 4 (disp32), 8 (absolute, no base). */
  readonly displacementSize: 0 | 1 | 4 | 8;
  readonly segment: RegisterValue;
  readonly label?: Label;
}

/** A label's address (plus `addend`) used as an immediate or as data. */
export interface SymbolRef {
  readonly kind: "symbol";
  readonly label: Label;
  readonly addend: bigint;
}

/** A branch target `bytes` past the end of the branch itself (it may land inside the next
 *  instruction — the random-program generator wants exactly that). */
export interface Ahead {
  readonly kind: "ahead";
  readonly bytes: number;
}

/**
 * An operand of `emit`. Which kind a number is follows from the instruction form: at a register
 * position it is an iced-x86 `Register`, at an immediate position an immediate, at a branch
 * position an absolute target. A string is a label (branch target); `mem`/`abs`/`rip` build
 * memory operands; `sym` a label's address as an immediate; `ahead` a relative branch target.
 */
export type Operand = number | bigint | Label | Mem | SymbolRef | Ahead;

const NONE = Register.None;

// iced-x86's encoder takes the displacement size of the address size the base register implies:
// 8 with a 64-bit base (RAX…R15, RIP), 4 with a 32-bit one (EAX…R15D, EIP); 1 for a disp8.
function displacementSize(base: RegisterValue, disp: bigint): 0 | 1 | 4 | 8 {
  if (base === NONE) return 8;
  if (disp === 0n) return 0;
  if (disp >= -128n && disp <= 127n) return 1;
  return RegisterExt.isGPR32(base) || base === Register.EIP ? 4 : 8;
}

/** [base + disp] with an optional segment override, index and scale. */
export function mem(base: RegisterValue, disp = 0n, segment: RegisterValue = NONE, index: RegisterValue = NONE, scale: 1 | 2 | 4 | 8 = 1): Mem {
  return { kind: "mem", base, index, scale, displacement: disp, displacementSize: displacementSize(base, disp), segment };
}

/** Absolute [disp32] without base or index (SIB form in 64-bit code), e.g. `abs(0x10n, Register.GS)`
 *  for %gs:0x10. */
export function abs(disp: bigint, segment: RegisterValue = NONE): Mem {
  return { kind: "mem", base: NONE, index: NONE, scale: 1, displacement: disp, displacementSize: 8, segment };
}

/** [rip + label + addend]: RIP-relative to a label (64-bit code). */
export function rip(label: Label, addend = 0n, segment: RegisterValue = NONE): Mem {
  return { kind: "mem", base: Register.RIP, index: NONE, scale: 1, displacement: addend, displacementSize: 8, segment, label };
}

/** The iced-x86 MemoryOperand of a label-free `Mem`, for instructions built with iced-x86's
 *  Instruction.create* (which take it over) and handed to `Section.add`. */
export function memoryOperand(m: Mem): IcedMemoryOperand {
  if (m.label !== undefined) throw new Error(`memoryOperand: [rip + ${m.label}] needs the assembler: use emit()`);
  return MemoryOperand.new64(m.base, m.index, m.scale, BigInt.asUintN(64, m.displacement), m.displacementSize, false, m.segment);
}

/** `mem(...)` as an iced-x86 MemoryOperand. */
export function icedMem(...args: Parameters<typeof mem>): IcedMemoryOperand {
  return memoryOperand(mem(...args));
}

/** `abs(...)` as an iced-x86 MemoryOperand. */
export function icedAbs(...args: Parameters<typeof abs>): IcedMemoryOperand {
  return memoryOperand(abs(...args));
}

/** The address of `label` (+ `addend`) as an immediate or data value. */
export function sym(label: Label, addend = 0n): SymbolRef {
  return { kind: "symbol", label, addend };
}

/** A branch target `bytes` bytes past the end of the branch. */
export function ahead(bytes: number): Ahead {
  return { kind: "ahead", bytes };
}

// ------------------------------------------------------------------------------------------------
// Building one instruction from data operands
// ------------------------------------------------------------------------------------------------

/** What an operand position of an instruction form takes (from iced-x86's OpCodeInfo). */
type Slot = "r" | "m" | "i" | "b" | "f";
const slotCache = new Map<CodeValue, readonly Slot[]>();

function slotsOf(code: CodeValue): readonly Slot[] {
  let slots = slotCache.get(code);
  if (slots !== undefined) return slots;
  const info = iced.CodeExt.opCode(code);
  try {
    const out: Slot[] = [];
    for (let n = 0; n < info.opCount; n++) {
      const k = info.opKind(n);
      const K = iced.OpCodeOperandKind;
      if (k === K.farbr2_2 || k === K.farbr4_2) out.push("f");
      else if (k >= K.imm4_m2z && k <= K.imm64) out.push("i");
      else if (k >= K.br16_1 && k <= K.brdisp_4) out.push("b");
      else if (k === K.mem || k === K.mem_offs || k === K.sibmem || k === K.mem_mpx || k === K.mem_mib || (k >= K.mem_vsib32x && k <= K.mem_vsib64z)) out.push("m");
      else out.push("r"); // a register, or a register-or-memory position (a Mem operand decides)
    }
    slots = out;
  } finally {
    info.free();
  }
  slotCache.set(code, slots);
  return slots;
}

/** Values the current encoding pass knows about addresses. */
export interface PassContext {
  /** A label as a branch or RIP-relative target: the labelled instruction's identifying IP when the
   *  BlockEncoder can resolve it, else its address from the previous pass. */
  target(label: Label): bigint;
  /** A label's address (from the previous pass; exact once passes have converged). */
  address(label: Label): bigint;
  /** The target `bytes` past the end of the instruction being built. */
  ahead(bytes: number): bigint;
}

function codeName(code: CodeValue): string {
  return (iced.Code as unknown as Record<number, string>)[code] ?? `#${code}`;
}

const I32_MIN = -(1n << 31n);
const U32_MAX = (1n << 32n) - 1n;

function resolvedMemoryOperand(m: Mem, ctx: PassContext): IcedMemoryOperand {
  const disp = m.label === undefined ? m.displacement : ctx.target(m.label) + m.displacement;
  return MemoryOperand.new64(m.base, m.index, m.scale, BigInt.asUintN(64, disp), m.displacementSize, false, m.segment);
}

function immediateOf(x: Operand, ctx: PassContext, what: string): bigint {
  if (typeof x === "number") return BigInt(x);
  if (typeof x === "bigint") return x;
  if (typeof x === "object" && x.kind === "symbol") return ctx.address(x.label) + x.addend;
  throw new Error(`${what}: expected an immediate, got ${describe(x)}`);
}

function describe(x: Operand): string {
  return typeof x === "object" ? x.kind : typeof x === "string" ? `label ${JSON.stringify(x)}` : `${typeof x} ${x}`;
}

/** Builds the iced-x86 instruction `code` with `operands` (the caller frees it). */
export function buildInstruction(code: CodeValue, operands: readonly Operand[], ctx: PassContext): IcedInstruction {
  const slots = slotsOf(code);
  const what = codeName(code);
  if (slots.length !== operands.length) throw new Error(`${what}: takes ${slots.length} operand(s), got ${operands.length}`);
  let form = "";
  const regs: RegisterValue[] = [];
  const imms: bigint[] = [];
  const mems: IcedMemoryOperand[] = [];
  let target = 0n;
  try {
    operands.forEach((x, n) => {
      const slot = slots[n]!;
      if (typeof x === "object" && x.kind === "mem") {
        if (slot !== "r" && slot !== "m") throw new Error(`${what}: operand ${n} cannot be memory`);
        mems.push(resolvedMemoryOperand(x, ctx));
        form += "m";
      } else if (slot === "i" || slot === "f") {
        imms.push(immediateOf(x, ctx, what));
        form += "i";
      } else if (slot === "b") {
        if (typeof x === "string") target = ctx.target(x);
        else if (typeof x === "object" && x.kind === "ahead") target = ctx.ahead(x.bytes);
        else target = immediateOf(x, ctx, what);
        form += "b";
      } else {
        if (typeof x !== "number") throw new Error(`${what}: operand ${n} is a register, got ${describe(x)}`);
        regs.push(x);
        form += "r";
      }
    });
  } catch (e) {
    for (const m of mems) m.free();
    throw e;
  }
  // The create* functions take ownership of the memory operands (wasm moves them).
  try {
    return create(code, what, form, slots, regs, imms, mems, target);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new Error(message.startsWith(what) ? message : `${what}: ${message}`);
  }
}

function imm32(v: bigint, what: string): { signed: boolean; value: number } {
  if (v < I32_MIN || v > U32_MAX) throw new Error(`${what}: immediate 0x${v.toString(16)} does not fit 32 bits`);
  return v < 0n ? { signed: true, value: Number(v) } : { signed: false, value: Number(v) };
}

function create(code: CodeValue, what: string, form: string, slots: readonly Slot[], r: RegisterValue[], i: bigint[], m: IcedMemoryOperand[], target: bigint): IcedInstruction {
  const I = Instruction;
  const one = (v: bigint) => imm32(v, what);
  switch (form) {
    case "": return I.create(code);
    case "b": return I.createBranch(code, BigInt.asUintN(64, target));
    case "r": return I.createReg(code, r[0]!);
    case "m": return I.createMem(code, m[0]!);
    case "i": { const a = one(i[0]!); return a.signed ? I.createI32(code, a.value) : I.createU32(code, a.value); }
    case "ii": {
      if (slots[0] === "f") return I.createFarBranch(code, Number(i[0]!), Number(i[1]!));
      const a = one(i[0]!), b = one(i[1]!);
      return a.signed || b.signed ? I.createI32I32(code, a.value, b.value) : I.createU32U32(code, a.value, b.value);
    }
    case "rr": return I.createRegReg(code, r[0]!, r[1]!);
    case "rm": return I.createRegMem(code, r[0]!, m[0]!);
    case "mr": return I.createMemReg(code, m[0]!, r[0]!);
    case "ri": {
      const v = i[0]!;
      if (v < I32_MIN || v > U32_MAX) return v < 0n ? I.createRegI64(code, r[0]!, v) : I.createRegU64(code, r[0]!, BigInt.asUintN(64, v));
      const a = one(v);
      return a.signed ? I.createRegI32(code, r[0]!, a.value) : I.createRegU32(code, r[0]!, a.value);
    }
    case "mi": { const a = one(i[0]!); return a.signed ? I.createMemI32(code, m[0]!, a.value) : I.createMemU32(code, m[0]!, a.value); }
    case "ir": { const a = one(i[0]!); return a.signed ? I.createI32Reg(code, a.value, r[0]!) : I.createU32Reg(code, a.value, r[0]!); }
    case "rrr": return I.createRegRegReg(code, r[0]!, r[1]!, r[2]!);
    case "rrm": return I.createRegRegMem(code, r[0]!, r[1]!, m[0]!);
    case "rmr": return I.createRegMemReg(code, r[0]!, m[0]!, r[1]!);
    case "mrr": return I.createMemRegReg(code, m[0]!, r[0]!, r[1]!);
    case "rri": { const a = one(i[0]!); return a.signed ? I.createRegRegI32(code, r[0]!, r[1]!, a.value) : I.createRegRegU32(code, r[0]!, r[1]!, a.value); }
    case "rmi": { const a = one(i[0]!); return a.signed ? I.createRegMemI32(code, r[0]!, m[0]!, a.value) : I.createRegMemU32(code, r[0]!, m[0]!, a.value); }
    case "mri": { const a = one(i[0]!); return a.signed ? I.createMemRegI32(code, m[0]!, r[0]!, a.value) : I.createMemRegU32(code, m[0]!, r[0]!, a.value); }
    default:
      throw new Error(`${what}: operand form "${form}" is not supported by emit(); build it with iced-x86's Instruction.create* and add it with insn()`);
  }
}

/** Encodes one instruction at `ip` (no labels): its bytes. Throws iced-x86's message when the
 *  instruction cannot be encoded for `bitness` (e.g. IRETQ in 32-bit code). Frees nothing. */
export function encodeOne(instruction: IcedInstruction, ip: bigint, bitness: Bitness = 64): Uint8Array {
  const encoder = new Encoder(bitness);
  try {
    encoder.encode(instruction, ip);
    return encoder.takeBuffer();
  } finally {
    encoder.free();
  }
}

// ------------------------------------------------------------------------------------------------
// Sections and the assembler
// ------------------------------------------------------------------------------------------------

/** What a section holds, in order. */
type Item =
  | { readonly kind: "label"; readonly name: Label }
  | { readonly kind: "emit"; readonly code: CodeValue; readonly operands: readonly Operand[] }
  /** Built by the caller (its branch target may come from `here()`). */
  | { readonly kind: "insn"; readonly instruction: IcedInstruction }
  | { readonly kind: "data"; readonly size: number; readonly bytes: (ctx: PassContext) => Uint8Array }
  | { readonly kind: "align"; readonly alignment: number; readonly fill: number };

/** Identifying IPs in 64-bit sections: item n gets FAKE + n·2^20 (+16 per 16-byte data piece).
 *  Bits 63..48 are not a sign extension of bit 47, so no real address collides with them. 16- and
 *  32-bit sections have no such room: there an item is identified by its previous-pass address. */
const FAKE = 0x5a5a_0000_0000_0000n;
const FAKE_END = FAKE + (1n << 48n);
const fakeIp = (item: number, piece = 0): bigint => FAKE + (BigInt(item) << 20n) + (BigInt(piece) << 4n);
const MAX_DATA = 1 << 20;

function le(value: bigint, size: number): number[] {
  const v = BigInt.asUintN(size * 8, value);
  return Array.from({ length: size }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
}

/** A contiguous run of code and data at `origin`. Methods return the section for chaining. */
export class Section {
  /** @internal The section's contents, in order (read by the Assembler). */
  readonly items: Item[] = [];
  constructor(
    readonly name: string,
    readonly origin: bigint,
    readonly bitness: Bitness,
  ) {}

  /** Defines `name` at the current position (the address of whatever comes next). */
  label(name: Label): this {
    this.items.push({ kind: "label", name });
    return this;
  }

  /** An instruction: `emit(Code.Add_rm64_r64, Register.RAX, Register.RBX)`,
   *  `emit(Code.Jne_rel8_64, "loop")`, `emit(Code.Mov_rm64_r64, abs(0x10n, Register.GS), Register.RSP)`. */
  emit(code: CodeValue, ...operands: Operand[]): this {
    this.items.push({ kind: "emit", code, operands });
    return this;
  }

  /** An instruction built with iced-x86's Instruction.create*; the assembler frees it. A branch
   *  target may be a value from `here()`. Returns the instruction. */
  add(instruction: IcedInstruction): IcedInstruction {
    this.items.push({ kind: "insn", instruction });
    return instruction;
  }

  /** Same as `add`, chaining. */
  insn(instruction: IcedInstruction): this {
    this.add(instruction);
    return this;
  }

  /** A branch target for instructions built by the caller and handed over with `add`: whatever
   *  comes next. Only branches understand it (64-bit sections); elsewhere use labels and `sym`. */
  here(): bigint {
    if (this.bitness !== 64) throw new Error(`section ${this.name}: here() needs a 64-bit section; use labels`);
    return fakeIp(this.items.length);
  }

  /** Raw bytes (already encoded code, or data). */
  bytes(data: Uint8Array | readonly number[]): this {
    const copy = Uint8Array.from(data);
    if (copy.length > MAX_DATA) throw new Error(`section ${this.name}: ${copy.length} bytes in one item (at most ${MAX_DATA}); split it`);
    this.items.push({ kind: "data", size: copy.length, bytes: () => copy });
    return this;
  }

  private values(size: 1 | 2 | 4 | 8, values: readonly (number | bigint | SymbolRef)[]): this {
    const symbolic = values.some((v) => typeof v === "object");
    const encode = (ctx: PassContext) => Uint8Array.from(values.flatMap((v) => le(typeof v === "object" ? ctx.address(v.label) + v.addend : BigInt(v), size)));
    if (!symbolic) return this.bytes(encode(NO_ADDRESSES));
    this.items.push({ kind: "data", size: size * values.length, bytes: encode });
    return this;
  }

  db(...values: (number | bigint | SymbolRef)[]): this { return this.values(1, values); }
  dw(...values: (number | bigint | SymbolRef)[]): this { return this.values(2, values); }
  dd(...values: (number | bigint | SymbolRef)[]): this { return this.values(4, values); }
  /** Quadwords; `sym("handler")` stores a label's address. */
  dq(...values: (number | bigint | SymbolRef)[]): this { return this.values(8, values); }

  /** The text's bytes (UTF-8), without a terminator. */
  ascii(text: string): this {
    return this.bytes(new TextEncoder().encode(text));
  }

  /** The text's bytes and a NUL. */
  asciz(text: string): this {
    return this.bytes([...new TextEncoder().encode(text), 0]);
  }

  /** `size` bytes of `fill`. */
  space(size: number, fill = 0): this {
    return this.bytes(new Uint8Array(size).fill(fill));
  }

  /** Pads with `fill` to a multiple of `alignment` (a power of two). */
  align(alignment: number, fill = 0): this {
    if (!(Number.isInteger(alignment) && alignment > 0 && (alignment & (alignment - 1)) === 0)) throw new Error(`align: ${alignment} is not a power of two`);
    this.items.push({ kind: "align", alignment, fill });
    return this;
  }
}

const NO_ADDRESSES: PassContext = {
  target: () => 0n,
  address: () => 0n,
  ahead: () => 0n,
};

export interface AssembledSection {
  readonly name: string;
  readonly origin: bigint;
  readonly bitness: Bitness;
  readonly bytes: Uint8Array;
}

/** The result: each section's bytes at its origin, and the symbol map (label → address). */
export class AssembledImage {
  constructor(
    readonly sections: readonly AssembledSection[],
    readonly symbols: ReadonlyMap<Label, bigint>,
  ) {}

  /** The address of `label`; throws when there is none. */
  symbol(label: Label): bigint {
    const a = this.symbols.get(label);
    if (a === undefined) throw new Error(`no symbol ${JSON.stringify(label)}`);
    return a;
  }

  /** The section named `name`. */
  section(name: string): AssembledSection {
    const s = this.sections.find((x) => x.name === name);
    if (s === undefined) throw new Error(`no section ${JSON.stringify(name)}`);
    return s;
  }
}

/** Where one item of a section landed in a pass. */
interface Placement {
  readonly address: bigint;
  readonly length: number;
}

/** One piece handed to the BlockEncoder: an instruction (size found by decoding) or ≤ 16 data bytes. */
interface Piece {
  readonly item: number;
  readonly size: number | null;
  readonly mnemonic: number;
}

const MAX_PASSES = 24;
/** The pass from which alignment padding only grows (see `pass`). */
const GROW_ONLY_PASS = 4;

/** Sections with one namespace of labels, encoded together. Single use: `assemble()` frees the
 *  instructions handed over with `add`/`insn`. */
export class Assembler {
  private readonly list: Section[] = [];
  private used = false;
  constructor(private readonly defaults: { readonly bitness?: Bitness } = {}) {}

  /** A new section at `origin`. */
  section(origin: bigint, options: { readonly name?: string; readonly bitness?: Bitness } = {}): Section {
    return this.include(new Section(options.name ?? `section${this.list.length}`, origin, options.bitness ?? this.defaults.bitness ?? 64));
  }

  /** Adds a section built elsewhere. */
  include(s: Section): Section {
    if (this.list.some((x) => x.name === s.name)) throw new Error(`section ${JSON.stringify(s.name)} defined twice`);
    this.list.push(s);
    return s;
  }

  assemble(): AssembledImage {
    if (this.used) throw new Error("an Assembler assembles once");
    this.used = true;
    try {
      return this.run();
    } finally {
      for (const s of this.list) for (const it of s.items) if (it.kind === "insn") it.instruction.free();
    }
  }

  private run(): AssembledImage {
    // Caller-built branches aimed at here(): the item they name (read before passes rewrite them).
    const hereTargets = new Map<IcedInstruction, number>();
    for (const s of this.list) {
      for (const it of s.items) {
        if (it.kind !== "insn") continue;
        const t = it.instruction.nearBranchTarget;
        if (t >= FAKE && t < FAKE_END) hereTargets.set(it.instruction, Number((t - FAKE) >> 20n));
      }
    }
    // Where each label is: its section and the index of the label item.
    const where = new Map<Label, { section: number; item: number }>();
    this.list.forEach((s, si) =>
      s.items.forEach((it, n) => {
        if (it.kind !== "label") return;
        if (where.has(it.name)) throw new Error(`label ${JSON.stringify(it.name)} defined twice`);
        where.set(it.name, { section: si, item: n });
      }),
    );
    let previous: Placement[][] | undefined;
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const result = this.pass(where, hereTargets, previous, pass);
      if (!result.usedAddresses || (previous !== undefined && samePlacements(previous, result.placements))) {
        const symbols = new Map<Label, bigint>();
        for (const [name, w] of where) symbols.set(name, result.placements[w.section]![w.item]!.address);
        return new AssembledImage(result.sections, symbols);
      }
      previous = result.placements;
    }
    throw new Error(`assembler: addresses still changing after ${MAX_PASSES} passes (alignment or label-dependent sizes that oscillate)`);
  }

  /** One encoding of every section, with address-dependent values taken from `previous`. */
  private pass(where: ReadonlyMap<Label, { section: number; item: number }>, hereTargets: ReadonlyMap<IcedInstruction, number>, previous: Placement[][] | undefined, pass: number) {
    let usedAddresses = false;
    const sections: AssembledSection[] = [];
    const placements: Placement[][] = [];
    let used = false;
    const addressOf = (section: number, item: number): bigint => {
      usedAddresses = used = true;
      return previous?.[section]?.[item]?.address ?? this.list[section]!.origin;
    };
    this.list.forEach((s, si) => {
      used = false;
      const items = s.items;
      // Previous-pass addresses, or (first pass) an estimate: 15 bytes per instruction.
      const estimate: bigint[] = [];
      let at = s.origin;
      for (const it of items) {
        estimate.push(previous?.[si]?.[estimate.length]?.address ?? at);
        at += it.kind === "data" ? BigInt(it.size) : it.kind === "emit" || it.kind === "insn" ? 15n : 0n;
      }
      const padding = items.map((it, n) => {
        if (it.kind !== "align") return 0;
        usedAddresses = used = true;
        const a = BigInt(it.alignment);
        const needed = Number((a - (estimate[n]! % a)) % a);
        // Padding and branch sizes depend on each other and can oscillate (a branch shrinks, an
        // alignment grows, the branch grows again). From GROW_ONLY_PASS on, a padding never
        // shrinks (it keeps the alignment by adding whole multiples), so sizes only grow and the
        // passes converge.
        const before = previous?.[si]?.[n]?.length;
        if (pass < GROW_ONLY_PASS || before === undefined || needed >= before) return needed;
        return needed + Math.ceil((before - needed) / it.alignment) * it.alignment;
      });
      const size = (n: number): number => {
        const it = items[n]!;
        return it.kind === "data" ? it.size : it.kind === "align" ? padding[n]! : it.kind === "label" ? 0 : 1;
      };
      /** The item a label or `here()` at index n stands for: the first with bytes at or after it. */
      const landing = (n: number): number | undefined => {
        for (let k = n; k < items.length; k++) if (size(k) > 0) return k;
        return undefined;
      };
      // 16/32-bit identities: the estimates, kept strictly increasing while they are not exact.
      const base: bigint[] = [];
      let free = 0n;
      items.forEach((_, n) => {
        const b = estimate[n]! > free ? estimate[n]! : free;
        base.push(b);
        free = b + 16n * BigInt(Math.ceil(size(n) / 16));
      });
      const identity = (n: number, piece = 0): bigint => {
        if (s.bitness === 64) return fakeIp(n, piece);
        usedAddresses = used = true;
        return base[n]! + 16n * BigInt(piece);
      };
      let current = 0;
      const ctx: PassContext = {
        target: (label) => {
          const w = where.get(label);
          if (w === undefined) throw new Error(`undefined label ${JSON.stringify(label)}`);
          const n = w.section === si ? landing(w.item) : undefined;
          return n === undefined ? addressOf(w.section, w.item) : identity(n);
        },
        address: (label) => {
          const w = where.get(label);
          if (w === undefined) throw new Error(`undefined label ${JSON.stringify(label)}`);
          return addressOf(w.section, w.item);
        },
        ahead: (bytes) => {
          usedAddresses = used = true;
          const p = previous?.[si]?.[current];
          // First pass: a branch to itself, so that the BlockEncoder picks the short form.
          return p === undefined ? identity(current) : p.address + BigInt(p.length) + BigInt(bytes);
        },
      };
      const encoder = new BlockEncoder(s.bitness, iced.BlockEncoderOptions.None);
      const pieces: Piece[] = [];
      try {
        items.forEach((it, n) => {
          current = n;
          if (it.kind === "label") return;
          if (it.kind === "emit" || it.kind === "insn") {
            const ins = it.kind === "emit" ? buildInstruction(it.code, it.operands, ctx) : it.instruction;
            try {
              const here = it.kind === "insn" ? hereTargets.get(ins) : undefined;
              if (here !== undefined) {
                const to = landing(here);
                ins.nearBranch64 = to === undefined ? addressOf(si, here) : identity(to);
              }
              ins.ip = identity(n);
              encoder.add(ins);
              pieces.push({ item: n, size: null, mnemonic: ins.mnemonic });
            } finally {
              if (it.kind === "emit") ins.free();
            }
            return;
          }
          const data = it.kind === "data" ? it.bytes(ctx) : new Uint8Array(padding[n]!).fill(it.fill);
          for (let p = 0; p * 16 < data.length; p++) {
            const chunk = data.subarray(p * 16, p * 16 + 16);
            const ins = Instruction.createDeclareByte(chunk);
            try {
              ins.ip = identity(n, p);
              encoder.add(ins);
            } finally {
              ins.free();
            }
            pieces.push({ item: n, size: chunk.length, mnemonic: 0 });
          }
        });
        const bytes = pieces.length === 0 ? new Uint8Array(0) : encoder.encode(s.origin);
        sections.push({ name: s.name, origin: s.origin, bitness: s.bitness, bytes });
        // Without labels or address-dependent values nobody needs to know where items landed.
        placements.push(where.size === 0 && !used ? [] : place(s, pieces, bytes));
      } finally {
        encoder.free();
      }
    });
    return { sections, placements, usedAddresses };
  }
}

/** Each item's address and length in `bytes`, found by decoding the instructions. */
function place(s: Section, pieces: readonly Piece[], bytes: Uint8Array): Placement[] {
  const n = s.items.length;
  const offsets = new Array<number | undefined>(n + 1).fill(undefined);
  const lengths = new Array<number>(n).fill(0);
  const decoder = new Decoder(s.bitness, bytes, iced.DecoderOptions.None);
  let at = 0;
  try {
    for (const piece of pieces) {
      if (offsets[piece.item] === undefined) offsets[piece.item] = at;
      let size = piece.size;
      if (size === null) {
        decoder.position = at;
        decoder.ip = s.origin + BigInt(at);
        const ins = decoder.decode();
        try {
          if (ins.code === iced.Code.INVALID || ins.mnemonic !== piece.mnemonic) {
            throw new Error(`section ${s.name}: the bytes at 0x${(s.origin + BigInt(at)).toString(16)} do not decode as the instruction written (a branch out of range?)`);
          }
          size = ins.length;
        } finally {
          ins.free();
        }
      }
      lengths[piece.item] = lengths[piece.item]! + size;
      at += size;
    }
  } finally {
    decoder.free();
  }
  if (at !== bytes.length) throw new Error(`section ${s.name}: the encoder wrote ${bytes.length} bytes, the instructions account for ${at}`);
  // Items without bytes (labels, empty padding) sit where the next item starts.
  offsets[n] = at;
  for (let k = n - 1; k >= 0; k--) if (offsets[k] === undefined) offsets[k] = offsets[k + 1];
  // One more entry: the end of the section (a `here()` taken last).
  return offsets.map((o, k) => ({ address: s.origin + BigInt(o!), length: lengths[k] ?? 0 }));
}

function samePlacements(a: readonly Placement[][], b: readonly Placement[][]): boolean {
  return a.length === b.length && a.every((s, i) => s.length === b[i]!.length && s.every((p, j) => p.address === b[i]![j]!.address && p.length === b[i]![j]!.length));
}

/** One section of code at `origin` (64-bit unless told): build it with `label`, `emit`, `add`,
 *  data and `align`; `encode()` gives its bytes, `assemble()` bytes and symbols. Single use. */
export class Program extends Section {
  private readonly assembler = new Assembler();
  constructor(origin: bigint, bitness: Bitness = 64) {
    super("program", origin, bitness);
    this.assembler.include(this);
  }

  assemble(): AssembledImage {
    return this.assembler.assemble();
  }

  encode(): Uint8Array {
    return this.assemble().sections[0]!.bytes;
  }
}

/** Assembles one section at `origin`: `assemble(0x10000n, (s) => s.label("loop").emit(...))`. */
export function assemble(origin: bigint, build: (s: Section) => void, bitness: Bitness = 64): AssembledImage {
  const a = new Assembler({ bitness });
  build(a.section(origin, { name: "program" }));
  return a.assemble();
}
