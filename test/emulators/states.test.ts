// States no descriptor load could produce, installed exactly on QEMU and Bochs (each engine reads
// the CPU back after installing and refuses a case whose state came out different), and the
// run-time CPU state: NMIs blocked with one pending (QEMU), refused with the reason on Bochs.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../contract/load.ts";
import type { AsyncEngine } from "../../contract/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { QemuEngine } from "../../engines/qemu/engine.ts";
import { BochsEngine } from "../../engines/bochs/engine.ts";
import { compareInstalled } from "../../engines/host/verify.ts";
import { liveChildren } from "../../engines/host/process.ts";
import { vectorPath } from "../helpers/fixture.ts";
import { familyByName, type BuiltCase } from "../../conformance/campaign/families.ts";
import { caseId, caseValue } from "../../conformance/campaign/cases.ts";

/** Case `index` of the session-9 deviation tables' campaign (seed 2026, all families). */
function campaignCase(index: number): BuiltCase {
  const names = "program,iret,delivery,syscall,segment,paging,msrcr,privileged,sysenter,compat,pcid,farxfer,model,fuzz".split(",");
  const id = caseId(names.map((n) => familyByName(n)!), 2026, index);
  return id.family.build(caseValue(id));
}

function vectorState(name: string): ArchState {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc.state;
}

/** sysret64-basic's initial state, made odd: a null DS with a usable DPL 3 cache and a base, an
 *  ES cache with a 64-bit base, FS/GS/kernel-GS bases above 4 GiB, a 64-bit CR2, CR8 = 5, odd
 *  GPRs, and a page of memory at 48 MiB (RAM grows for it). */
function oddState(): ArchState {
  const s = vectorState("sysret64-basic");
  const memory = new Map(s.memory);
  memory.set(0x3000000 / 4096, new Uint8Array(4096).fill(0x5a));
  return {
    ...s,
    gpr: s.gpr.map((v, i) => (i === 1 || i === 4 || i === 11 ? v : BigInt.asUintN(64, 0x1111_0000_0000_0000n * BigInt(i + 1) + BigInt(i)))),
    ds: { ...s.ds, selector: 0, dpl: 3, base: 0x1234_0000n },
    es: { ...s.es, base: 0xffff_8000_0000_0000n },
    fs: { ...s.fs, base: 0x7fff_1234_5000n },
    gs: { ...s.gs, base: 0xffff_8880_0000_0000n },
    kernelGsBase: 0xffff_ffff_8100_0000n,
    cr2: 0xffff_c900_dead_b000n,
    cr8: 5n,
    memory,
  };
}

const engines: readonly (readonly [string, () => AsyncEngine])[] = [
  ["QEMU", () => new QemuEngine()],
  ["Bochs", () => new BochsEngine()],
];

describe("states installed exactly", () => {
  for (const [name, open] of engines) {
    it(`${name} installs an odd state and runs it as the spec does`, async () => {
      const state = oddState();
      const engine = open();
      try {
        await engine.load(state, "intel");
        const installed = await engine.state();
        expect(compareInstalled(state, installed)).toBeNull();
        expect(Buffer.from(installed.memory.get(0x3000000 / 4096)!).equals(Buffer.from(state.memory.get(0x3000000 / 4096)!))).toBe(true);
        // SYSRETQ then the user loop; the spec agrees on the registers.
        const spec = new SpecEngine();
        spec.load(state, "intel");
        spec.run(5);
        await engine.run(5);
        const a = spec.state();
        const b = await engine.state();
        expect([b.rip, b.cs.selector, b.ss.selector, b.rflags, b.cr2, b.kernelGsBase, b.gs.base]).toEqual([a.rip, a.cs.selector, a.ss.selector, a.rflags, a.cr2, a.kernelGsBase, a.gs.base]);
      } finally {
        await engine.close();
      }
      expect(liveChildren()).toBe(0);
    });
  }

  it("QEMU starts a case with NMIs blocked and one pending, which stays pending", async () => {
    const base = vectorState("nmi-ring0-if0");
    const state = { ...base, cpu: { ...base.cpu, nmiBlocked: true, pendingNmi: true } };
    const engine = new QemuEngine();
    try {
      await engine.load(state, "intel");
      const spec = new SpecEngine();
      spec.load(state, "intel");
      for (let i = 0; i < 2; i++) expect((await engine.step()).kind).toBe(spec.step().kind);
      const got = await engine.state();
      expect(got.rip).toBe(spec.state().rip);
      expect(got.cpu).toMatchObject({ nmiBlocked: true, pendingNmi: true, halted: true });
    } finally {
      await engine.close();
    }
  });

  it("Bochs refuses NMIs blocked at the start, with the reason (its RSM unblocks them)", async () => {
    const base = vectorState("nmi-ring0-if0");
    const engine = new BochsEngine();
    await expect(engine.load({ ...base, cpu: { ...base.cpu, nmiBlocked: true } }, "intel")).rejects.toThrow(/nmi_blocked: Bochs's RSM unblocks NMIs/);
    await engine.close();
    expect(liveChildren()).toBe(0);
  });

  it("Bochs: an SS that is not a writable data segment, named as unsupported when a stack access makes Bochs exit, run when the case faults first", async () => {
    // Case 9 (compat, ring 0, SS type 0): `mov eax, [ebp]` reaches Bochs's failed SS assertion.
    const exiting = campaignCase(9);
    expect(exiting.state.ss).toMatchObject({ type: 0, s: 1, unusable: 0 });
    const engine = new BochsEngine();
    try {
      await engine.load(exiting.state, exiting.profile);
      await expect(engine.step()).rejects.toMatchObject({
        kind: "unsupported-state",
        message: expect.stringMatching(/^bochs: sregs\.ss: type 0 .*Bochs cannot hold an SS that is not a writable data segment.*failed assertion "IS_DATA_SEGMENT_WRITEABLE\(.*SS.*\)" at stack\.cc/),
      });
      // Case 1045 (compat, ring 3, SS type 0): its first load faults, Bochs delivers it; the spec agrees.
      const faulting = campaignCase(1045);
      expect(faulting.state.ss).toMatchObject({ type: 0, s: 1, unusable: 0 });
      await engine.load(faulting.state, faulting.profile);
      const spec = new SpecEngine();
      spec.load(faulting.state, faulting.profile);
      for (let i = 0; i < 2; i++) expect(await engine.step()).toMatchObject({ kind: spec.step().kind });
      expect((await engine.state()).rip).toBe(spec.state().rip);
    } finally {
      await engine.close();
    }
    expect(liveChildren()).toBe(0);
  });
});
