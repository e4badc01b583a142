// Decoded instructions remembered by where their bytes are, so the step loop does not decode the
// same bytes again on every pass through a loop. Exact: decoding is a pure function of the bytes
// and the mode, and the key is a page object that can no longer change (a page in a PhysicalMemory
// is never written in place — a write makes a new page object), the offset in it and the mode.
// Only instructions lying wholly inside that page are remembered.
import type { Instruction } from "./instruction.ts";

/** Per page object: offset·2 + (1 in 64-bit mode) → the instruction there. */
const memo = new WeakMap<Uint8Array, Map<number, Instruction>>();

export function rememberedInstruction(page: Uint8Array, offset: number, mode64: boolean): Instruction | undefined {
  return memo.get(page)?.get(offset * 2 + (mode64 ? 1 : 0));
}

export function rememberInstruction(page: Uint8Array, offset: number, mode64: boolean, insn: Instruction): void {
  if (offset + insn.length > page.length) return;
  let byOffset = memo.get(page);
  if (byOffset === undefined) memo.set(page, (byOffset = new Map()));
  byOffset.set(offset * 2 + (mode64 ? 1 : 0), insn);
}
