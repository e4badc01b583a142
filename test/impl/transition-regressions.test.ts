// Directed regressions for divergences the transition lockstep search
// (test/conformance/lockstep-transitions.test.ts) found in impl/. Each runs impl/ alone and checks
// the SDM answer; spec/ gives the same (asserted too, as the reference).
import { describe, expect, it } from "vitest";
import { ImplEngine } from "../../impl/engine.ts";
import { SpecEngine } from "../../spec/engine.ts";
import type { Engine, EngineEvent } from "../../contract/engine.ts";
import { stateFromMachine, type Machine } from "../../spec/machine/machine.ts";
import { kernelMachine, withBytes, withRegs } from "../helpers/fixture.ts";

const ENGINES: readonly (() => Engine)[] = [() => new ImplEngine(), () => new SpecEngine()];

function firstStep(m: Machine): { event: EngineEvent; engine: Engine }[] {
  return ENGINES.map((make) => {
    const engine = make();
    engine.load(stateFromMachine(m), "intel");
    return { event: engine.step(), engine };
  });
}

function withQwords(m: Machine, at: bigint, slots: readonly bigint[]): Machine {
  let memory = m.memory;
  slots.forEach((v, i) => { memory = memory.write(at + 8n * BigInt(i), 8, v); });
  return { ...m, memory };
}

describe("impl transitions: lockstep regressions", () => {
  it("IRETQ-03/IRETQ-10: a NULL return CS gives #GP(0) before the SS:RSP slots are read (they lie on an unmapped page)", () => {
    // IRETW at RSP 0x5ffff8: RIP, CS, FLAGS at 0x5ffff8..0x5ffffd, RSP and SS from 0x5ffffe into the
    // unmapped page at 0x600000. CS = 0 must fault first; impl read all five slots up front (#PF).
    const m = withRegs(withBytes(kernelMachine(), 0x10000n, [0x66, 0xcf]), { rsp: 0x5ffff8n });
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
      expect(engine.state().cr2).toBe(0n);
    }
  });

  it("IRETQ-10: with a valid CS, the SS:RSP slots on an unmapped page still fault (#PF on the SS slot)", () => {
    const at = 0x5ffff0n; // RIP, CS in the mapped page; RFLAGS at 0x600000
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcf]), { rsp: at }), at, [0x10800n, 0x08n]);
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "delivered", vector: 14 });
      expect(engine.state().cr2).toBe(0x600000n);
    }
  });

  it("RETF-08: LRETQ to a compatibility-mode CS with a return RIP above 4 GiB is beyond the CS limit: #GP(0)", () => {
    // impl compared only RIP[31:0] with the limit and loaded 0xfffffff0.
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcb]), { rsp: 0x1ff00n }), 0x1ff00n, [0x7fff_ffff_fff0n, 0x40n]);
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
      expect(engine.state().cs.selector).toBe(0x08);
    }
  });

  it("IRETQ-12: IRETQ to a compatibility-mode CS with a return RIP above 4 GiB: #GP(0)", () => {
    const frame = [0x1_0000_0800n, 0x40n, 0x2n, 0x1ff00n, 0x10n];
    const m = withQwords(withRegs(withBytes(kernelMachine(), 0x10000n, [0x48, 0xcf]), { rsp: 0x1fe00n }), 0x1fe00n, frame);
    for (const { event } of firstStep(m)) expect(event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0 });
  });

  it("DF-05 (model choice 'Nested faults'): a triple fault on an instruction fetch leaves RFLAGS as before the instruction, RF included", () => {
    // PML4[0] not present: the fetch, the #PF frame and the #DF frame all fault. impl cleared RF.
    const m = { ...withBytes(kernelMachine(), 0x1000n, [0, 0, 0, 0, 0, 0, 0, 0]), rflags: 0x10002n };
    for (const { event, engine } of firstStep(m)) {
      expect(event).toMatchObject({ kind: "shutdown", rip: 0x10000n });
      expect(engine.state().rflags).toBe(0x10002n);
    }
  });
});
