// iced-x86, loaded once for everything that builds guest code. It is a synchronous CommonJS wasm
// module: the default import is the whole module object. Its instruction, operand and encoder
// objects live in wasm memory and must be freed; the assembler (asm.ts) does that for its users.
import iced from "iced-x86";

export { iced };
export const { Code, Register, RegisterExt, Instruction, MemoryOperand, Encoder, BlockEncoder, Decoder } = iced;
/** Short name for `Register` in code-heavy files. */
export const Reg = iced.Register;

/** An iced-x86 `Code` value (which instruction form: `Code.Add_rm64_r64`). */
export type CodeValue = (typeof iced.Code)[keyof typeof iced.Code];
/** An iced-x86 `Register` value (`Register.RAX`). */
export type RegisterValue = (typeof iced.Register)[keyof typeof iced.Register];
export type IcedInstruction = InstanceType<typeof iced.Instruction>;
export type IcedMemoryOperand = InstanceType<typeof iced.MemoryOperand>;
