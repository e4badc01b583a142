// The generic GDB bridge on QEMU's gdbstub: QEMU is booted into a vector's initial state (by the
// QEMU engine's boot image, which then hands its stub over), the bridge takes the target as it
// finds it, and single-steps it in lockstep with the spec; on everything the stub lets the bridge
// observe, the two agree after every step.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../contract/load.ts";
import { compareEvents, compareStates } from "../../contract/compare.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { QemuEngine } from "../../engines/qemu/engine.ts";
import { GdbEngine } from "../../engines/gdb/engine.ts";
import { liveChildren } from "../../engines/host/process.ts";
import { vectorPath } from "../helpers/fixture.ts";

const STEPS = 12;

describe("the GDB bridge on QEMU -s", () => {
  for (const name of ["syscall-sysret-roundtrip", "lretq-to-ring3", "iretq-cpl3-iopl3-if-changes", "swapgs-twice"]) {
    it(`single-steps ${name} in lockstep with the spec`, async () => {
      const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
      if (doc.kind !== "vector") throw new Error(name);
      const qemu = new QemuEngine();
      const spec = new SpecEngine();
      let bridge: GdbEngine | undefined;
      try {
        await qemu.load(doc.state, doc.profile);
        const { socket } = await qemu.releaseGdbStub();
        bridge = new GdbEngine({ target: { path: socket } });
        await bridge.load(doc.state, doc.profile);
        spec.load(doc.state, doc.profile);
        const unobservable = bridge.capabilities.unobservable;
        // QEMU's stub exposes the control registers, EFER and the FS/GS/kernel-GS bases; its
        // memory it shows physically.
        expect(unobservable).not.toContain("sregs.cr3");
        expect(unobservable).not.toContain("msrs.KERNEL_GS_BASE");
        expect(unobservable).not.toContain("memory*");
        for (let step = 1; step <= STEPS; step++) {
          const a = spec.step();
          const b = await bridge.step();
          // The bridge cannot see deliveries; the spec's steps here retire instructions.
          expect(compareEvents(a, b), `step ${step} events`).toEqual([]);
          const c = compareStates(spec.state(), await bridge.state(), { rule: "architectural", memory: "all", unobservable });
          expect(c.differences, `step ${step}: ${JSON.stringify(c.differences)}`).toEqual([]);
          expect(c.notCompared).toContain("sregs.cs.dpl");
        }
      } finally {
        await bridge?.close();
        await qemu.close();
      }
      expect(liveChildren()).toBe(0);
    }, 120_000);
  }
});
