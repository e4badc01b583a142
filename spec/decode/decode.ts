// PLACEHOLDER: the decoder family replaces this file.
import type { Fault } from "../fault.ts";
import type { Instruction, Unsupported } from "./instruction.ts";

/** Fetches instruction byte `i` (0-based from RIP), or the fault that fetching it raises. */
export type FetchByte = (i: number) => number | Fault;

export function decode(fetch: FetchByte, _mode64: boolean): Instruction | Unsupported | Fault {
  const b = fetch(0);
  if (typeof b !== "number") return b;
  return { kind: "unsupported", bytes: Uint8Array.of(b), reason: "decoder not written yet" };
}
