// The one fixture builder of the tests: machines on the guest kit's shared layout (guest/layout.ts,
// the layout of conformance/vectors/README.md "Layout shared by these tests"), as contract
// ArchStates (for any engine) and as spec/ Machines; and the project's vectors by name.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseDocument } from "../../contract/load.ts";
import { machineFromState, type Machine } from "../../spec/machine/machine.ts";
import { GPR_NAMES, type GprName } from "../../contract/schema.ts";
import type { ArchState, Segment } from "../../contract/state.ts";
import { DEFAULT_LAYOUT, buildGuest, segmentOf, type GuestLayout, type StartOptions } from "../../guest/index.ts";

const VECTORS = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));

export function vectorPath(name: string): string {
  return VECTORS + name + (name.endsWith(".json") ? "" : ".json");
}

/** The initial machine of a project vector. */
export function vectorMachine(name: string): Machine {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  return machineFromState(doc.state);
}

/** A state on `layout` (default: the shared layout) starting as `start` says. */
export function guestState(start: StartOptions = {}, layout: GuestLayout = DEFAULT_LAYOUT): ArchState {
  return buildGuest(layout, { start }).state;
}

/** CPL 0, 64-bit mode, RIP 0x10000, RSP 0x20000, RFLAGS 0x2 on the shared layout. */
export function kernelState(): ArchState {
  return guestState({ ring: 0 });
}

/** CPL 3, 64-bit mode, RIP 0x200000, RSP 0x210000, RFLAGS 0x202 on the shared layout. */
export function userState(): ArchState {
  return guestState({ ring: 3 });
}

let kernel: Machine | undefined;
let user: Machine | undefined;

/** kernelState() as a spec/ Machine. */
export function kernelMachine(): Machine {
  return (kernel ??= machineFromState(kernelState()));
}

/** userState() as a spec/ Machine. */
export function userMachine(): Machine {
  return (user ??= machineFromState(userState()));
}

export const KERNEL_CS: Segment = segmentOf(DEFAULT_LAYOUT, "kernelCode");
export const KERNEL_SS: Segment = segmentOf(DEFAULT_LAYOUT, "kernelData");
export const USER_CS64: Segment = segmentOf(DEFAULT_LAYOUT, "userCode", 3);
export const USER_CS32: Segment = segmentOf(DEFAULT_LAYOUT, "userCode32", 3);
export const USER_SS: Segment = segmentOf(DEFAULT_LAYOUT, "userData", 3);

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
