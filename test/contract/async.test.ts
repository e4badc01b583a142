// asAsync (contract/async.ts): an in-process Engine behind the AsyncEngine interface, with
// batched steps.
import { describe, expect, it } from "vitest";
import { asAsync } from "../../contract/async.ts";
import type { EngineCapabilities } from "../../contract/engine.ts";
import { stateFromMachine } from "../../spec/machine/machine.ts";
import { createEngine, ENGINE_NAMES } from "../../engines/registry.ts";
import { kernelMachine, withBytes } from "../helpers/fixture.ts";

const CAPABILITIES: EngineCapabilities = { name: "test", profiles: ["intel"], singleStep: true, raise: true, touched: true, unobservable: [] };

describe("asAsync", () => {
  it("steps(n) runs up to n steps and stops after a HLT nothing can wake", async () => {
    // nop; nop; hlt; nop
    const state = stateFromMachine(withBytes(kernelMachine(), 0x10000n, [0x90, 0x90, 0xf4, 0x90]));
    for (const name of ENGINE_NAMES) {
      const engine = asAsync(createEngine(name), CAPABILITIES);
      await engine.load(state, "intel");
      expect((await engine.steps(1)).map((e) => e.kind)).toEqual(["retired"]);
      expect((await engine.steps(10)).map((e) => e.kind)).toEqual(["retired", "halted"]);
      // Idle: the one event says so, and it is no step.
      expect((await engine.steps(10)).map((e) => e.kind)).toEqual(["halted"]);
      expect((await engine.state()).rip).toBe(0x10003n);
    }
  });

  it("a HLT with an interrupt able to wake the CPU goes on to deliver it", async () => {
    const m = withBytes(kernelMachine(), 0x10000n, [0xf4]);
    const state = stateFromMachine({ ...m, rflags: 0x202n, cpu: { ...m.cpu, pendingIrq: null } });
    const engine = asAsync(createEngine("impl"), CAPABILITIES);
    await engine.load(state, "intel");
    await engine.raise({ irq: 0x30 });
    // The IRQ is taken at the first boundary, before the HLT; its handler's HLT then halts for good.
    expect((await engine.steps(5)).map((e) => e.kind)).toEqual(["delivered", "halted"]);
  });

  it("run, touched and close; a closed engine refuses calls", async () => {
    const engine = asAsync(createEngine("spec"), CAPABILITIES);
    await engine.load(stateFromMachine(withBytes(kernelMachine(), 0x10000n, [0x50, 0xf4])), "intel"); // push rax; hlt
    expect(await engine.run(10)).toEqual({ reason: "hlt", steps: 2 });
    expect((await engine.touched()).length).toBeGreaterThan(0);
    await engine.close();
    await engine.close();
    await expect(engine.state()).rejects.toThrow(/closed/);
  });
});
