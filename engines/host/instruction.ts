// What the engine needs to know about the instruction at RIP before stepping it: a HLT (which may
// never come back from a gdbstub step), a REP string instruction (stepped per iteration), or
// IN/OUT (reported as an io event). Decoded with iced-x86.
import { iced } from "../firmware/asm.ts";

export type InstructionClass =
  | { readonly kind: "hlt" }
  | { readonly kind: "rep-string" }
  | { readonly kind: "io"; readonly direction: "in" | "out"; readonly size: 1 | 2 | 4; readonly port: number | undefined }
  | { readonly kind: "other" };

const { Mnemonic, OpKind, Register } = iced;

/** The instruction an event names (contract StepInstruction): its bytes as decoded, or what was
 *  read when it did not decode (none when nothing could be read at RIP). */
export function stepInstruction(bytes: Uint8Array, bitness: 16 | 32 | 64, rip: bigint): { readonly bytes: Uint8Array; readonly length: number } {
  if (bytes.length === 0) return { bytes: new Uint8Array(0), length: 0 };
  const decoder = new iced.Decoder(bitness, bytes, iced.DecoderOptions.None);
  decoder.ip = rip;
  const insn = decoder.decode();
  try {
    if (insn.isInvalid) return { bytes: Uint8Array.from(bytes), length: 0 };
    return { bytes: Uint8Array.from(bytes.subarray(0, insn.length)), length: insn.length };
  } finally {
    insn.free();
    decoder.free();
  }
}

export function classifyInstruction(bytes: Uint8Array, bitness: 16 | 32 | 64, rip: bigint): InstructionClass {
  if (bytes.length === 0) return { kind: "other" };
  const decoder = new iced.Decoder(bitness, bytes, iced.DecoderOptions.None);
  decoder.ip = rip;
  const insn = decoder.decode();
  try {
    if (insn.isInvalid) return { kind: "other" };
    const m = insn.mnemonic;
    if (m === Mnemonic.Hlt) return { kind: "hlt" };
    if ((insn.hasRepPrefix || insn.hasRepnePrefix) && insn.isStringInstruction) return { kind: "rep-string" };
    if (m === Mnemonic.In || m === Mnemonic.Out) {
      const direction = m === Mnemonic.In ? "in" : "out";
      const dataOperand = direction === "in" ? 0 : 1;
      const portOperand = direction === "in" ? 1 : 0;
      const reg = insn.opRegister(dataOperand);
      const size = reg === Register.AL ? 1 : reg === Register.AX ? 2 : 4;
      const port = insn.opKind(portOperand) === OpKind.Immediate8 ? insn.immediate8 : undefined;
      return { kind: "io", direction, size, port };
    }
    return { kind: "other" };
  } finally {
    insn.free();
    decoder.free();
  }
}
