// A small assembler over iced-x86 for the emulator boot images: 16-, 32- and 64-bit code blocks
// at fixed origins, with labels. Instructions are built with iced-x86's Instruction.create* and
// encoded with its BlockEncoder (which resolves branch targets); label addresses are recovered by
// decoding the result back, instruction for instruction (a block holds code only, never data).
import { iced } from "../../guest/iced.ts";

export { iced };

type Instruction = InstanceType<typeof iced.Instruction>;
type MemoryOperand = InstanceType<typeof iced.MemoryOperand>;
export type Register = (typeof iced.Register)[keyof typeof iced.Register];
export type Code = (typeof iced.Code)[keyof typeof iced.Code];

export const { Code, Register: Reg } = iced;

export type Bitness = 16 | 32 | 64;

/** A branch target inside one block. */
export class Label {
  constructor(readonly name: string) {}
}

/** A register operand (iced's Register values are plain numbers, as immediates are). */
export interface RegOperand {
  readonly reg: Register;
}
export const r = (reg: Register): RegOperand => ({ reg });

/** A memory operand description; turned into iced's MemoryOperand when the block is encoded. */
export interface MemOperand {
  readonly mem: {
    readonly base: Register;
    readonly index: Register;
    readonly scale: number;
    readonly displacement: bigint;
    /** 0, 1, 2, 4 or 8 bytes; with no base, the size also picks the address size. */
    readonly displSize: number;
    readonly segment: Register;
  };
}

/** [displacement] with an absolute address of `addressBits` (16 or 32; 32 in 16-bit code adds 67h). */
export function abs(displacement: bigint | number, addressBits: 16 | 32 | 64 = 32, segment: Register = Reg.None): MemOperand {
  return { mem: { base: Reg.None, index: Reg.None, scale: 1, displacement: BigInt(displacement), displSize: addressBits / 8, segment } };
}

/** [base + displacement]. */
export function at(base: Register, displacement: bigint | number = 0, segment: Register = Reg.None): MemOperand {
  const d = BigInt(displacement);
  const displSize = d === 0n ? 0 : d >= -128n && d <= 127n ? 1 : 4;
  return { mem: { base, index: Reg.None, scale: 1, displacement: d, displSize, segment } };
}

export type Operand = RegOperand | MemOperand | Label | number | bigint;

function isReg(o: Operand): o is RegOperand {
  return typeof o === "object" && "reg" in o;
}
function isMem(o: Operand): o is MemOperand {
  return typeof o === "object" && "mem" in o;
}

function memoryOperand(m: MemOperand): MemoryOperand {
  const x = m.mem;
  return iced.MemoryOperand.new64(x.base, x.index, x.scale, x.displacement, x.displSize, false, x.segment);
}

type Pending =
  | { readonly code: Code; readonly operands: readonly Operand[] }
  /** An instruction iced builds with a dedicated constructor (string instructions). */
  | { readonly make: () => Instruction };

/** The encoded block: bytes at `origin`, and the address of every bound label. */
export interface EncodedBlock {
  readonly origin: bigint;
  readonly bytes: Uint8Array;
  readonly labels: ReadonlyMap<Label, bigint>;
}

export class Block {
  private readonly items: Pending[] = [];
  /** Label → index of the instruction it names (the next one added after `bind`). */
  private readonly bound = new Map<Label, number>();

  constructor(
    readonly bitness: Bitness,
    readonly origin: bigint,
  ) {}

  label(name = "label"): Label {
    return new Label(name);
  }

  /** Names the next instruction added. */
  bind(label: Label): this {
    if (this.bound.has(label)) throw new Error(`label ${label.name} bound twice`);
    this.bound.set(label, this.items.length);
    return this;
  }

  /** A new label bound here. */
  here(name = "here"): Label {
    const l = new Label(name);
    this.bind(l);
    return l;
  }

  /** One instruction: an iced Code and its operands in Intel order. */
  i(code: Code, ...operands: Operand[]): this {
    this.items.push({ code, operands });
    return this;
  }

  /** REP MOVSD with `addressBits` addressing (ESI/EDI/ECX or RSI/RDI/RCX). */
  repMovsd(addressBits: 16 | 32 | 64): this {
    this.items.push({ make: () => iced.Instruction.createRepMovsd(addressBits) });
    return this;
  }

  private create(p: Pending, fakeIp: (l: Label) => bigint): Instruction {
    if ("make" in p) return p.make();
    const I = iced.Instruction;
    const ops = p.operands;
    const kinds = ops.map((o) => (isReg(o) ? "r" : isMem(o) ? "m" : o instanceof Label ? "l" : "i")).join("");
    const reg = (k: number) => (ops[k] as RegOperand).reg;
    const mem = (k: number) => memoryOperand(ops[k] as MemOperand);
    const imm = (k: number) => ops[k] as number | bigint;
    const u32 = (k: number) => {
      const v = BigInt(imm(k));
      if (v < -(1n << 31n) || v >= 1n << 32n) throw new Error(`immediate ${v} does not fit 32 bits`);
      return Number(BigInt.asUintN(32, v));
    };
    switch (kinds) {
      case "":
        return I.create(p.code);
      case "r":
        return I.createReg(p.code, reg(0));
      case "m":
        return I.createMem(p.code, mem(0));
      case "i":
        return I.createU32(p.code, u32(0));
      case "l":
        return I.createBranch(p.code, fakeIp(ops[0] as Label));
      case "rr":
        return I.createRegReg(p.code, reg(0), reg(1));
      case "rm":
        return I.createRegMem(p.code, reg(0), mem(1));
      case "mr":
        return I.createMemReg(p.code, mem(0), reg(1));
      case "mi":
        return I.createMemU32(p.code, mem(0), u32(1));
      case "ri": {
        const v = BigInt(imm(1));
        if (p.code === Code.Mov_r64_imm64) return I.createRegU64(p.code, reg(0), BigInt.asUintN(64, v));
        return I.createRegU32(p.code, reg(0), u32(1));
      }
      case "ii":
        // far branch: selector, offset
        return I.createFarBranch(p.code, Number(imm(0)), u32(1));
      default:
        throw new Error(`unsupported operand kinds "${kinds}" for code ${p.code}`);
    }
  }

  encode(): EncodedBlock {
    // Every instruction gets a fake address 16 apart; branches name those and the block encoder
    // maps them to the real addresses.
    const fake = (index: number) => this.origin + 16n * BigInt(index);
    const fakeIp = (l: Label) => {
      const index = this.bound.get(l);
      if (index === undefined) throw new Error(`label ${l.name} used but never bound`);
      if (index >= this.items.length) throw new Error(`label ${l.name} bound after the last instruction`);
      return fake(index);
    };
    const encoder = new iced.BlockEncoder(this.bitness, iced.BlockEncoderOptions.None);
    const created: Instruction[] = [];
    let bytes: Uint8Array;
    try {
      this.items.forEach((p, index) => {
        const insn = this.create(p, fakeIp);
        created.push(insn);
        insn.ip = fake(index);
        encoder.add(insn);
      });
      bytes = encoder.encode(this.origin);
    } finally {
      encoder.free();
      for (const insn of created) insn.free();
    }
    // Real addresses: decode the block back; the k-th decoded instruction is the k-th added.
    const addresses: bigint[] = [];
    const decoder = new iced.Decoder(this.bitness, bytes, iced.DecoderOptions.None);
    try {
      decoder.ip = this.origin;
      while (decoder.canDecode) {
        const insn = decoder.decode();
        addresses.push(insn.ip);
        insn.free();
      }
    } finally {
      decoder.free();
    }
    if (addresses.length !== this.items.length) {
      throw new Error(`block at 0x${this.origin.toString(16)}: ${this.items.length} instructions encoded as ${addresses.length}`);
    }
    const end = this.origin + BigInt(bytes.length);
    const labels = new Map<Label, bigint>();
    for (const [label, index] of this.bound) labels.set(label, index < addresses.length ? addresses[index]! : end);
    return { origin: this.origin, bytes, labels };
  }
}

/** A fixed-size image assembled from pieces at offsets; overlapping pieces are a bug. */
export class Image {
  readonly bytes: Uint8Array;
  private readonly used: { start: number; end: number; what: string }[] = [];

  constructor(
    size: number,
    /** Fill for unused bytes. */
    fill = 0,
  ) {
    this.bytes = new Uint8Array(size).fill(fill);
  }

  place(offset: number, data: Uint8Array, what: string): void {
    const end = offset + data.length;
    if (offset < 0 || end > this.bytes.length) throw new Error(`${what}: [0x${offset.toString(16)}, 0x${end.toString(16)}) is outside the image`);
    for (const u of this.used) {
      if (offset < u.end && u.start < end) throw new Error(`${what} overlaps ${u.what} at 0x${Math.max(offset, u.start).toString(16)}`);
    }
    this.used.push({ start: offset, end, what });
    this.bytes.set(data, offset);
  }
}

/** Little-endian field writer over a byte array. */
export class Fields {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(offset: number, v: number): void {
    this.view.setUint8(offset, v);
  }
  u16(offset: number, v: number): void {
    this.view.setUint16(offset, v, true);
  }
  u32(offset: number, v: number | bigint): void {
    this.view.setUint32(offset, Number(BigInt.asUintN(32, BigInt(v))), true);
  }
  u64(offset: number, v: bigint): void {
    this.view.setBigUint64(offset, BigInt.asUintN(64, v), true);
  }
}

/** Reader counterpart of Fields. */
export class FieldReader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(offset: number): number {
    return this.view.getUint8(offset);
  }
  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  u64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }
}
