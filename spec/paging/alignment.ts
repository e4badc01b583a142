// Alignment checking (SDM Vol. 3A §6.15, interrupt 17 "Alignment Check Exception (#AC)"; digest
// SMAP-06): only data accesses at CPL 3 with CR0.AM = 1 and RFLAGS.AC = 1 are checked. Supervisor
// accesses (explicit or implicit) and instruction fetches never are.
import type { Machine } from "../machine/machine.ts";
import { CR0, RFLAGS } from "../machine/registers.ts";
import type { Access } from "./access.ts";

/**
 * The alignment an operand of `size` bytes needs (SDM Table 6-7): its own size for words, doublewords
 * and quadwords. Other sizes (10-byte descriptor-table images, far pointers) must be given by the
 * caller, which knows the data type; 1 means "never misaligned".
 */
export function naturalAlignment(size: number): number {
  return size === 2 || size === 4 || size === 8 ? size : 1;
}

/** Whether the access raises #AC(0). */
export function alignmentCheckFails(m: Pick<Machine, "cr0" | "rflags">, linear: bigint, alignment: number, access: Access): boolean {
  if (access.mode !== "user" || access.kind === "execute" || alignment <= 1) return false;
  if ((m.cr0 & CR0.AM) === 0n || (m.rflags & RFLAGS.AC) === 0n) return false;
  return (linear & BigInt(alignment - 1)) !== 0n;
}
