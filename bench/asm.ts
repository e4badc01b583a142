// A small assembler over iced-x86 (synchronous CommonJS wasm): instructions are created with
// Instruction.create*, encoded with BlockEncoder (branch targets resolved), and freed.
import iced from "iced-x86";

const { BlockEncoder, BlockEncoderOptions, Instruction, MemoryOperand, Register } = iced;
export const { Code, Register: Reg } = iced;
type Insn = InstanceType<typeof Instruction>;
type RegisterValue = (typeof Register)[keyof typeof Register];

/** Memory operand [base + index·scale + disp] with an optional FS/GS override. */
export function mem(base: RegisterValue, disp = 0n, seg: RegisterValue = Register.None, index: RegisterValue = Register.None,
  scale = 1): InstanceType<typeof MemoryOperand> {
  const size = disp === 0n ? 0 : disp >= -128n && disp <= 127n ? 1 : 4;
  return MemoryOperand.new64(base, index, scale, disp, base === Register.None ? 4 : size, false, seg);
}

/** Absolute [disp32] without a base (SIB form, 64-bit addressing), e.g. %gs:0x10. */
export function abs(disp: bigint, seg: RegisterValue = Register.None): InstanceType<typeof MemoryOperand> {
  return MemoryOperand.new64(Register.None, Register.None, 1, disp, 8, false, seg);
}

/** A program encoded at `rip`. Branch targets are labels from here(): the block encoder maps
 *  them to the real addresses of the labelled instructions. */
export class Program {
  private readonly items: Insn[] = [];
  constructor(readonly rip: bigint) {}
  /** Label of the next instruction added. */
  here(): bigint {
    return this.rip + 16n * BigInt(this.items.length);
  }
  /** Adds an instruction; returns it (e.g. to set `ip` for a label). */
  add(i: Insn): Insn {
    this.items.push(i);
    return i;
  }
  encode(): Uint8Array {
    const enc = new BlockEncoder(64, BlockEncoderOptions.None);
    try {
      let ip = this.rip;
      for (const i of this.items) {
        i.ip = ip;
        ip += 16n;
        enc.add(i);
      }
      return enc.encode(this.rip);
    } finally {
      enc.free();
      for (const i of this.items) i.free();
    }
  }
}

export { Instruction, Register };
