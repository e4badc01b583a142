// Builders for the event-delivery tests: IDT gates, GDT descriptors, TSS fields and code bytes on the
// guest kit's shared layout (guest/layout.ts, test/helpers/fixture.ts).
import "../../../spec/index.ts";
import { DEFAULT_LAYOUT, FLAT_DESCRIPTORS, encodeDescriptor, encodeGate, interruptGate, translate } from "../../../guest/index.ts";
import { isFault, type Fault } from "../../../spec/fault.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { INTEL } from "../../../contract/profile.ts";
import { step, type StepOptions } from "../../../spec/step/step.ts";
import type { StepResult } from "../../../spec/step/events.ts";

export const IDT = DEFAULT_LAYOUT.idt.base;
export const GDT = DEFAULT_LAYOUT.gdt.base;
export const TSS = DEFAULT_LAYOUT.tss.base;
/** The layout's handler stub for vector v. */
export const HANDLER = (v: number): bigint => DEFAULT_LAYOUT.idt.gates[v]!.offset;

export interface GateSpec {
  readonly offset?: bigint;
  readonly selector?: number;
  readonly ist?: number;
  /** 0xe interrupt gate, 0xf trap gate. */
  readonly type?: number;
  readonly dpl?: number;
  readonly present?: number;
  readonly s?: number;
}

/** Writes the 16-byte IA-32e gate for `vector` (defaults: the layout's interrupt gate, DPL 0). */
export function withGate(m: Machine, vector: number, g: GateSpec = {}): Machine {
  const base = interruptGate(g.offset ?? HANDLER(vector), g.selector ?? 0x08);
  const [low, high] = encodeGate({ ...base, type: g.type ?? base.type, s: g.s ?? base.s, dpl: g.dpl ?? base.dpl, p: g.present ?? base.p, ist: g.ist ?? base.ist });
  const at = IDT + 16n * BigInt(vector);
  return { ...m, memory: m.memory.write(at, 8, low).write(at + 8n, 8, high) };
}

/** A code/data descriptor's low 8 bytes: flat, limit 0xfffff with G = 1. */
export function descriptor(d: { type: number; s?: number; dpl: number; present?: number; l?: number; db?: number }): bigint {
  return encodeDescriptor({ ...FLAT_DESCRIPTORS.data(d.dpl), type: d.type, s: d.s ?? 1, p: d.present ?? 1, l: d.l ?? 0, db: d.db ?? 0 });
}

export function withDescriptor(m: Machine, selector: number, low: bigint): Machine {
  return { ...m, memory: m.memory.write(GDT + BigInt(selector & 0xfff8), 8, low) };
}

/** The GDT copied to 0x600000 and mapped there read-only (its page-directory entry made a 2 MiB
 *  supervisor page; the fixture has CR0.WP = 1), so a write to it — an accessed bit — faults. */
export function withReadOnlyGdt(m: Machine): Machine {
  const gdt = m.memory.readBytes(m.gdtr.base, m.gdtr.limit + 1);
  const pde = translate((a) => m.memory.read(a, 8), m.cr3, 0x600000n).entries[2]!.address;
  const memory = m.memory.writeBytes(0x600000n, gdt).write(pde, 8, 0x600081n);
  return { ...m, memory, gdtr: { ...m.gdtr, base: 0x600000n } };
}

export function withTss(m: Machine, offset: number, value: bigint): Machine {
  return { ...m, memory: m.memory.write(TSS + BigInt(offset), 8, value) };
}

export function withStack(m: Machine, address: bigint, qwords: readonly bigint[]): Machine {
  let memory = m.memory;
  qwords.forEach((q, i) => (memory = memory.write(address + 8n * BigInt(i), 8, q)));
  return { ...m, memory };
}

/** The five-qword frame (+ error code) at `rsp`, lowest address first. */
export function frameAt(m: Machine, rsp: bigint, words: number): bigint[] {
  return Array.from({ length: words }, (_, i) => m.memory.read(rsp + 8n * BigInt(i), 8));
}

export function asMachine(x: Machine | Fault): Machine {
  if (isFault(x)) throw new Error(`unexpected fault ${x.rule} vector ${x.vector} ec ${x.errorCode}`);
  return x;
}

export function asFault(x: Machine | Fault): Fault {
  if (!isFault(x)) throw new Error("expected a fault");
  return x;
}

export function stepOnce(m: Machine, options: StepOptions = {}): StepResult {
  return step(m, { profile: INTEL, ...options });
}

/** Steps `n` times (each must not stop the machine). */
export function steps(m: Machine, n: number, options: StepOptions = {}): { state: Machine; results: StepResult[] } {
  const results: StepResult[] = [];
  let s = m;
  for (let i = 0; i < n; i++) {
    const r = stepOnce(s, options);
    results.push(r);
    s = r.state;
  }
  return { state: s, results };
}
