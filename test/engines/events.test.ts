// What a step's event says about its instruction (contract/engine.ts StepInstruction), the same on
// spec/ (SpecEngine) and impl/ (ImplEngine): the bytes of every instruction step, whatever its
// outcome; none for a boundary event or an idle CPU; an empty fetch when the fetch faulted.
import { describe, expect, it } from "vitest";
import type { Engine, EngineEvent } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { stateFromMachine } from "../../spec/machine/machine.ts";
import { createEngine, ENGINE_NAMES } from "../../engines/registry.ts";
import { kernelMachine, withBytes } from "../helpers/fixture.ts";

const insn = (...bytes: number[]) => ({ bytes: Uint8Array.from(bytes), length: bytes.length });
const NOT_FETCHED = { bytes: new Uint8Array(0), length: 0 };

function engines(state: ArchState): Engine[] {
  return ENGINE_NAMES.map((name) => {
    const e = createEngine(name);
    e.load(state, "intel");
    return e;
  });
}

function without<T extends EngineEvent>(e: T): Omit<T, "rules"> {
  const { rules: _rules, ...rest } = e;
  return rest;
}

describe("step events carry the instruction's bytes on both engines", () => {
  it("retired, io, a fault, HLT; then the idle CPU's event has none", () => {
    // inc rbx; out 0x80, al; ud2 (→ #UD handler: hlt)
    const state = stateFromMachine(withBytes(kernelMachine(), 0x10000n, [0x48, 0xff, 0xc3, 0xe6, 0x80, 0x0f, 0x0b]));
    for (const e of engines(state)) {
      expect(e.step()).toMatchObject({ kind: "retired", instruction: insn(0x48, 0xff, 0xc3) });
      expect(e.step()).toMatchObject({ kind: "io", instruction: insn(0xe6, 0x80) });
      expect(e.step()).toMatchObject({ kind: "delivered", vector: 6, instruction: insn(0x0f, 0x0b) });
      expect(e.step()).toMatchObject({ kind: "halted", rip: 0xb060n, instruction: insn(0xf4) });
      expect(e.step()).toEqual({ kind: "halted", rip: 0xb061n });
    }
  });

  it("events taken at a boundary (NMI, external interrupt) have no instruction", () => {
    const state = stateFromMachine({ ...withBytes(kernelMachine(), 0x10000n, [0x90]), rflags: 0x202n });
    for (const e of engines(state)) {
      e.raise({ nmi: true });
      expect(without(e.step())).toEqual({ kind: "delivered", rip: 0x10000n, vector: 2, errorCode: undefined, source: "nmi" });
    }
    for (const e of engines(state)) {
      e.raise({ irq: 0x30 });
      expect(without(e.step())).toEqual({ kind: "delivered", rip: 0x10000n, vector: 0x30, errorCode: undefined, source: "external" });
    }
  });

  it("a fetch fault is an instruction step with nothing fetched", () => {
    // RIP on the unmapped page at 0x600000: #PF on the fetch, delivered to its handler.
    const state = stateFromMachine({ ...kernelMachine(), rip: 0x600000n });
    for (const e of engines(state)) {
      const event = e.step();
      expect(event).toMatchObject({ kind: "delivered", vector: 14, instruction: NOT_FETCHED });
    }
  });

  it("a triple fault names the instruction that caused it", () => {
    // IDTR limit 0: ud2's #UD, then #GP for the gate, then #DF for that: shutdown.
    const m = withBytes(kernelMachine(), 0x10000n, [0x0f, 0x0b]);
    const state = stateFromMachine({ ...m, idtr: { ...m.idtr, limit: 0 } });
    for (const e of engines(state)) expect(e.step()).toMatchObject({ kind: "shutdown", rip: 0x10000n, instruction: insn(0x0f, 0x0b) });
  });
});
