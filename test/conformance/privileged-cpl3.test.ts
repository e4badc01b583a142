// Every form of the CPL-3 table (privileged-cpl3.ts) on every in-process engine, through the
// Engine interface: one step from a CPL-3 state of the shared layout (64-bit and compatibility
// mode, intel and amd), the instruction's bytes at RIP and a user-writable address in RAX. The
// step must complete, or deliver exactly the table's fault through the IDT — never stop
// `unsupported`. spec/ also names the rule that decided it.
import { describe, expect, it } from "vitest";
import type { Engine, EngineEvent } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { guestState } from "../helpers/fixture.ts";
import { cpl3Instances, type Cpl3Instance } from "./privileged-cpl3.ts";

const USER_DATA = 0x220000n;
const instances = cpl3Instances();

/** The CPL-3 states of the shared layout, built once per mode (engines copy what they load:
 *  spec's purity test, impl's load). */
const bases = new Map<boolean, ArchState>();
function baseFor(compat: boolean): ArchState {
  let base = bases.get(compat);
  if (base === undefined) bases.set(compat, (base = guestState({ ring: 3, compat })));
  return base;
}

function stateFor(c: Cpl3Instance): ArchState {
  const base = baseFor(c.mode === "compat");
  const memory = new Map(base.memory);
  const page = Number(base.rip >> 12n);
  const bytes = new Uint8Array(memory.get(page) ?? new Uint8Array(4096));
  bytes.set(c.bytes, Number(base.rip & 0xfffn));
  memory.set(page, bytes);
  const gpr = base.gpr.map((v, i) => (i === 0 ? USER_DATA : v));
  return { ...base, gpr, memory, cr4: base.cr4 | c.cr4, sysenterCs: c.sysenterCs };
}

const describeOutcome = (e: EngineEvent): string =>
  e.kind === "delivered" ? `delivered vector ${e.vector} error ${String(e.errorCode)}` : e.kind === "unsupported" ? `unsupported (${e.reason})` : e.kind;

function check(engine: Engine, c: Cpl3Instance, rules: boolean): void {
  const label = `${c.form} [${c.bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ")}] ${c.mode} ${c.profile} cr4+0x${c.cr4.toString(16)}`;
  engine.load(stateFor(c), c.profile);
  const e = engine.step();
  // Here and below, expect only when the check fails (over 800 cases; vitest's expect costs more
  // than the check): the same assertions.
  if (e.kind === "unsupported") expect(e.kind, `${label}: ${describeOutcome(e)}`).not.toBe("unsupported");
  if (c.outcome === "retired") {
    if (e.kind !== "retired") expect(e.kind, `${label}: ${describeOutcome(e)}`).toBe("retired");
    return;
  }
  const errorCode = c.outcome.vector === 13 ? 0 : undefined;
  if (e.kind !== "delivered" || !Object.is(e.vector, c.outcome.vector) || !Object.is(e.errorCode, errorCode) || e.source !== "exception") {
    expect(e.kind === "delivered" ? { vector: e.vector, errorCode: e.errorCode, source: e.source } : describeOutcome(e), label)
      .toEqual({ vector: c.outcome.vector, errorCode, source: "exception" });
  }
  if (rules && c.rule !== undefined && e.faults?.[0]?.rule !== c.rule) expect(e.faults?.[0]?.rule, label).toBe(c.rule);
}

describe("privileged and UMIP-guarded instructions at CPL 3: the one table, on every engine", () => {
  it("the table covers every form in both modes and profiles", () => {
    expect(instances.length).toBeGreaterThan(400);
    expect(new Set(instances.map((c) => c.form)).size).toBeGreaterThan(100);
  });
  const engines: readonly [string, () => Engine, boolean][] = [
    ["spec", () => new SpecEngine({ rules: true }), true],
    ["impl", () => new ImplEngine(), false],
  ];
  for (const [name, open, rules] of engines) {
    it(`${name}: every case delivers the table's fault or completes, never unsupported (${instances.length} cases)`, () => {
      const engine = open();
      for (const c of instances) check(engine, c, rules);
    });
  }
});
