// 4-level paging (SDM Vol. 3A §4.5). PLACEHOLDER walk: present bits only. The paging family
// replaces this with the full rules (R/W, U/S, NX, WP, SMEP, SMAP, reserved bits, A/D, error code).
import { fault, type Fault } from "../fault.ts";
import type { Machine } from "../machine/machine.ts";
import type { PhysicalMemory } from "../machine/physical-memory.ts";
import type { Access } from "./access.ts";

export interface Translation {
  readonly physical: bigint;
  /** Memory with the accessed/dirty bits this walk set. */
  readonly memory: PhysicalMemory;
}

export function translate(
  m: Pick<Machine, "cr0" | "cr3" | "cr4" | "efer" | "rflags">,
  memory: PhysicalMemory,
  linear: bigint,
  access: Access,
): Translation | Fault {
  let table = m.cr3 & 0x000f_ffff_ffff_f000n;
  for (const shift of [39n, 30n, 21n, 12n]) {
    const entry = memory.read(table + ((linear >> shift) & 0x1ffn) * 8n, 8);
    if ((entry & 1n) === 0n) {
      const code = (access.kind === "write" ? 2 : 0) | (access.mode === "user" ? 4 : 0);
      return fault("PF-02", 14, code, linear);
    }
    const frame = entry & 0x000f_ffff_ffff_f000n;
    if (shift !== 12n && (entry & 0x80n) !== 0n) {
      const pageMask = (1n << shift) - 1n;
      return { physical: (frame & ~pageMask) | (linear & pageMask), memory };
    }
    table = frame;
  }
  return { physical: table | (linear & 0xfffn), memory };
}
