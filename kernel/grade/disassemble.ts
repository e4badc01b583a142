// The instruction at an address of a state, as text (AT&T, objdump style), for reports.
import iced from "iced-x86";
import type { ArchState } from "../../contract/state.ts";
import { readLinear } from "../../spec/context/index.ts";

const { Decoder, DecoderOptions, Formatter, FormatterSyntax, Code } = iced;
let formatter: InstanceType<typeof Formatter> | undefined;

export function instructionAt(state: ArchState, rip: bigint): string {
  const bytes: number[] = [];
  for (let i = 0n; i < 15n; i++) {
    const b = readLinear(state, rip + i, 1);
    if (b === undefined) break;
    bytes.push(Number(b));
  }
  if (bytes.length === 0) return "(not mapped)";
  const decoder = new Decoder(64, Uint8Array.from(bytes), DecoderOptions.None);
  decoder.ip = rip;
  const insn = decoder.decode();
  try {
    if (insn.code === Code.INVALID) return "(not an instruction)";
    if (formatter === undefined) {
      formatter = new Formatter(FormatterSyntax.Gas);
      formatter.uppercaseHex = false;
      formatter.branchLeadingZeros = false;
    }
    return formatter.format(insn);
  } finally {
    insn.free();
    decoder.free();
  }
}
