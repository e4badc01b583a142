// Test helpers for the system-instruction family: run real instruction bytes through one step of
// the spec (decoder, step loop, semantics) with fault delivery off, and build GDT descriptors.
import { expect } from "vitest";
import "../../../spec/index.ts";
import type { Fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { INTEL, type Profile } from "../../../contract/profile.ts";
import type { RuleId } from "../../../spec/rules/rule.ts";
import type { StepResult } from "../../../spec/step/events.ts";
import { step } from "../../../spec/step/step.ts";
import { withCode } from "../../helpers/fixture.ts";
import { DEFAULT_LAYOUT, encodeDescriptor } from "../../../guest/index.ts";

/** One step of `bytes` placed at RIP (low memory is identity-mapped), faults not delivered. */
export function stepBytes(m: Machine, bytes: readonly number[], profile: Profile = INTEL, coverage?: Set<RuleId>): StepResult {
  return step(withCode(m, bytes), { profile, delivery: "stop", ...(coverage === undefined ? {} : { coverage }) });
}

/** The machine after a step that must have completed the instruction. */
export function retired(r: StepResult): Machine {
  if (r.event.kind !== "retired" && r.event.kind !== "halted") throw new Error(`expected the instruction to complete, got ${JSON.stringify(r.event, (_k, v: unknown) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v))}`);
  return r.state;
}

/** The fault a step stopped with (delivery off). */
export function faultOf(r: StepResult): Fault {
  if (r.event.kind !== "fault") throw new Error(`expected a fault, got ${r.event.kind}`);
  return r.event.fault;
}

/** Asserts the step faulted with `vector`/`errorCode` (and `rule` when given), leaving the machine at the instruction. */
export function expectFault(r: StepResult, start: Machine, vector: number, errorCode: number | undefined, rule?: RuleId): void {
  const f = faultOf(r);
  expect({ vector: f.vector, errorCode: f.errorCode }).toEqual({ vector, errorCode });
  if (rule !== undefined) expect(f.rule).toBe(rule);
  // Nothing architectural changed (GLOBAL-05): registers, segments, control registers.
  const { memory: _m1, ...after } = r.state;
  const { memory: _m2, ...before } = withCode(start, []);
  expect(after).toEqual(before);
}

export interface DescriptorSpec {
  readonly base?: bigint;
  /** Raw 20-bit limit. */
  readonly limit?: number;
  readonly type: number;
  readonly s?: number;
  readonly dpl?: number;
  readonly present?: number;
  readonly l?: number;
  readonly db?: number;
  readonly g?: number;
}

/** The low 8 bytes of a segment descriptor (SDM Vol. 3A Figure 3-8). */
export function descriptor(d: DescriptorSpec): bigint {
  return encodeDescriptor({
    base: Number((d.base ?? 0n) & 0xffff_ffffn), limit: d.limit ?? 0xfffff, type: d.type, s: d.s ?? 1, dpl: d.dpl ?? 0,
    p: d.present ?? 1, avl: 0, l: d.l ?? 0, db: d.db ?? 0, g: d.g ?? 1,
  });
}

/** Writes a GDT entry (8 bytes, or 16 with `high`) and extends the GDT limit to cover it. */
export function withGdtEntry(m: Machine, selector: number, low: bigint, high?: bigint): Machine {
  const at = m.gdtr.base + BigInt(selector & 0xfff8);
  let memory = m.memory.write(at, 8, low);
  if (high !== undefined) memory = memory.write(at + 8n, 8, high);
  const end = (selector & 0xfff8) + (high === undefined ? 7 : 15);
  return { ...m, memory, gdtr: { ...m.gdtr, limit: Math.max(m.gdtr.limit, end) } };
}

/** Spare GDT slots past the shared layout (whose last entry is at 0x58). */
export const SPARE = DEFAULT_LAYOUT.gdt.limit + 1;
