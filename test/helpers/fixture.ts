// Test machines built on the vectors' shared layout (conformance/vectors/README.md, "Layout shared
// by these tests"): identity-mapped 0–6 MiB in 2 MiB pages (2–4 MiB user), GDT at 0x8000, IDT at
// 0x9000 with every handler `hlt` at 0xb000 + 16·v, TSS at 0xa000, kernel code 0x10000,
// LSTAR 0x11000, user code 0x200000, user stack top 0x210000.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseDocument } from "../../contract/load.ts";
import { machineFromState, type Machine } from "../../spec/machine/machine.ts";
import { GPR_NAMES, type GprName } from "../../contract/schema.ts";
import type { Segment } from "../../contract/state.ts";

const VECTORS = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));

export function vectorPath(name: string): string {
  return VECTORS + name + (name.endsWith(".json") ? "" : ".json");
}

/** The initial machine of a project vector. */
export function vectorMachine(name: string): Machine {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  return machineFromState(doc.state);
}

let base: Machine | undefined;

/** CPL 0, 64-bit mode, RIP 0x10000, RSP 0x20000, RFLAGS 0x2, STAR/LSTAR/CSTAR as the vectors set
 *  them, EFER = SCE|LME|LMA|NXE, TSS RSP0 0x20000 and IST n at 0x21000 + 0x1000·(n−1). */
export function kernelMachine(): Machine {
  if (base === undefined) {
    const m = vectorMachine("syscall-from-ring0");
    base = { ...m, rip: 0x10000n, gpr: m.gpr.map(() => 0n), rflags: 2n };
    base = { ...base, gpr: withGpr(base.gpr, { rsp: 0x20000n }) };
    // RSP0 and IST1..7 in the TSS at 0xa000 (DT-03 offsets).
    let memory = base.memory.write(0xa004n, 8, 0x20000n);
    for (let n = 1; n <= 7; n++) memory = memory.write(0xa024n + 8n * BigInt(n - 1), 8, 0x21000n + 0x1000n * BigInt(n - 1));
    base = { ...base, memory };
  }
  return base;
}

export const KERNEL_CS: Segment = { selector: 0x08, base: 0n, limit: 0xffffffff, type: 11, s: 1, dpl: 0, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 };
export const KERNEL_SS: Segment = { selector: 0x10, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 0, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
export const USER_CS64: Segment = { selector: 0x2b, base: 0n, limit: 0xffffffff, type: 11, s: 1, dpl: 3, present: 1, db: 0, l: 1, g: 1, avl: 0, unusable: 0 };
export const USER_CS32: Segment = { selector: 0x1b, base: 0n, limit: 0xffffffff, type: 11, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };
export const USER_SS: Segment = { selector: 0x23, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, l: 0, g: 1, avl: 0, unusable: 0 };

/** The kernel machine switched to CPL 3 at RIP 0x200000 with RSP 0x210000 (user pages). */
export function userMachine(): Machine {
  const m = kernelMachine();
  return { ...m, cs: USER_CS64, ss: USER_SS, rip: 0x200000n, rflags: 0x202n, gpr: withGpr(m.gpr, { rsp: 0x210000n }) };
}

export function withGpr(gpr: readonly bigint[], values: Partial<Record<GprName, bigint>>): bigint[] {
  return gpr.map((v, i) => values[GPR_NAMES[i]!] ?? v);
}

/** Sets general registers by name. */
export function withRegs(m: Machine, values: Partial<Record<GprName, bigint>>): Machine {
  return { ...m, gpr: withGpr(m.gpr, values) };
}

/** Stores bytes at a physical address (low memory is identity-mapped). */
export function withBytes(m: Machine, address: bigint, bytes: readonly number[] | Uint8Array): Machine {
  return { ...m, memory: m.memory.writeBytes(address, Uint8Array.from(bytes)) };
}

/** Places code at RIP. */
export function withCode(m: Machine, bytes: readonly number[] | Uint8Array): Machine {
  return withBytes(m, m.rip, bytes);
}

export function gpr(m: Machine, name: GprName): bigint {
  return m.gpr[GPR_NAMES.indexOf(name)]!;
}
