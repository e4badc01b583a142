// Attribution of the divergences the emulators show (docs/deviations/): each is grouped under the
// rule whose effect explains engine B's value, not under a rule that merely names "frame" or
// "memory" — and the accessed flags of a faulting walk, which the SDM leaves open, are a named gap.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent } from "../../contract/engine.ts";
import { compareStates } from "../../contract/compare.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { attribute, vectorsAt } from "../../conformance/campaign/attribution.ts";
import { gapByName } from "../../conformance/campaign/gaps.ts";
import { vectorPath } from "../helpers/fixture.ts";
import { readPhysical64, translate } from "../../guest/paging.ts";
import { encodeGate, interruptGate } from "../../guest/descriptors.ts";

function vectorState(name: string): ArchState {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc.state;
}

/** The spec's first step from `state` that delivers an event: the state before it, the event and
 *  the state after it. */
function firstDelivery(state: ArchState): { before: ArchState; event: EngineEvent; after: ArchState } {
  const spec = new SpecEngine();
  spec.load(state, "intel");
  for (let i = 0; i < 50; i++) {
    const before = spec.state();
    const event = spec.step();
    if (event.kind === "delivered") return { before, event, after: spec.state() };
  }
  throw new Error("no delivery");
}

/** `s` with the byte at physical `address` changed by `f`. */
function poke(s: ArchState, address: number, f: (byte: number) => number): ArchState {
  const memory = new Map(s.memory);
  const page = new Uint8Array(memory.get(Math.floor(address / 4096))!);
  page[address % 4096] = f(page[address % 4096]!);
  memory.set(Math.floor(address / 4096), page);
  return { ...s, memory };
}

/** How the divergences below are compared (as an emulator campaign compares). */
const ARCHITECTURAL = { rule: "architectural", unobservable: [] } as const;

function divergence(before: ArchState, eventA: EngineEvent, stateA: ArchState, stateB: ArchState) {
  const differences = compareStates(stateA, stateB, { rule: "architectural", memory: "all" }).differences;
  return { before, eventA, eventB: undefined, stateA, stateB, differences, compared: ARCHITECTURAL };
}

describe("attribution of emulator deviations", () => {
  it("a fault frame without RF in its RFLAGS image is RF-03, not the frame's RSP rule", () => {
    // gp-noncanonical-load: #GP(0) with an error code; the pushed RFLAGS is at RSP + 24.
    const { before, event, after } = firstDelivery(vectorState("gp-noncanonical-load"));
    expect(event.kind === "delivered" && event.errorCode).toBe(0);
    const rfByte = Number(after.gpr[4]!) + 24 + 2;
    expect(after.memory.get(Math.floor(rfByte / 4096))![rfByte % 4096]! & 1).toBe(1);
    const withoutRf = poke(after, rfByte, (b) => b & ~1);
    const at = attribute(divergence(before, event, after, withoutRf), "intel");
    expect(at.rule).toBe("RF-03");
    expect(at.why).toMatch(/RF = 0 in the RFLAGS image pushed for vector 13, not 1/);
    // Another byte of the frame wrong as well: not RF-03 alone.
    expect(attribute(divergence(before, event, after, poke(withoutRf, rfByte + 8, (b) => b ^ 0x10)), "intel").rule).not.toBe("RF-03");
  });

  it("NMIs left blocked by an IRET that faults are IRETQ-00", () => {
    const base = vectorState("iretq-ring3-to-ring0-gp");
    const { before, event, after } = firstDelivery({ ...base, cpu: { ...base.cpu, nmiBlocked: true } });
    expect(before.cpu.nmiBlocked).toBe(true);
    expect(after.cpu.nmiBlocked).toBe(false);
    const at = attribute(divergence(before, event, after, { ...after, cpu: { ...after.cpu, nmiBlocked: true } }), "intel");
    expect(at.rule).toBe("IRETQ-00");
    expect(at.why).toMatch(/NMIs stay blocked after an IRET that faults \(vector 13\)/);
  });
});

describe("the faulting-walk-accessed gap", () => {
  const gap = gapByName("faulting-walk-accessed")!;
  const { before, event, after } = firstDelivery(vectorState("pf-user-read-notpresent"));
  const pml4 = Number(before.cr3 & ~0xfffn);
  const context = (stateB: ArchState) => ({ ...divergence(before, event, after, stateB), eventB: undefined });

  it("covers A set by engine B in a paging-structure entry the spec left clear", () => {
    const clear = poke(after, pml4, (b) => b & ~0x20);
    const withA = poke(clear, pml4, (b) => b | 0x20);
    expect(gap.applies({ ...context(withA), stateA: clear, differences: compareStates(clear, withA, { rule: "architectural", memory: "all" }).differences })).toBe(true);
  });

  it("does not cover other bits, other memory, or A cleared by engine B", () => {
    const clear = poke(after, pml4, (b) => b & ~0x20);
    const diff = (b: ArchState) => ({ ...context(b), stateA: clear, differences: compareStates(clear, b, { rule: "architectural", memory: "all" }).differences });
    expect(gap.applies(diff(poke(clear, pml4, (b) => b | 0x40)))).toBe(false);
    const stack = Number(after.gpr[4]!);
    expect(gap.applies(diff(poke(clear, stack, (b) => b ^ 0x20)))).toBe(false);
    const set = poke(after, pml4, (b) => b | 0x20);
    expect(gap.applies({ ...context(clear), stateA: set, differences: compareStates(set, clear, { rule: "architectural", memory: "all" }).differences })).toBe(false);
    expect(gap.applies({ ...diff(poke(clear, pml4, (b) => b | 0x20)), differences: [...diff(poke(clear, pml4, (b) => b | 0x20)).differences, { field: "regs.rax", a: "0x0", b: "0x1" }] })).toBe(false);
  });
});

describe("the undefined-flags and shutdown-state gaps", () => {
  const base = vectorState("sysret64-basic");
  /** `s` with `bytes` at its RIP (through its page tables). */
  function withCode(s: ArchState, bytes: readonly number[]): ArchState {
    const read64 = (a: bigint) => readPhysical64(s.memory, a);
    let out = s;
    bytes.forEach((b, i) => {
      const p = translate(read64, s.cr3, s.rip + BigInt(i)).physical!;
      out = poke(out, Number(p), () => b);
    });
    return out;
  }
  const flagsContext = (code: readonly number[], a: bigint, b: bigint) => {
    const before = withCode(base, code);
    const stateA = { ...before, rflags: a };
    const stateB = { ...before, rflags: b };
    return { before, stateA, stateB, eventA: undefined, eventB: undefined, differences: compareStates(stateA, stateB, { rule: "architectural", memory: "all" }).differences };
  };
  const undefinedFlags = gapByName("undefined-flags")!;
  const shutdown = gapByName("shutdown-state")!;

  it("undefined-flags covers OF after a multi-bit RCR, not CF, and not OF after ADD", () => {
    const rcr = [0xc0, 0xd8, 0x05]; // rcr al, 5
    expect(undefinedFlags.applies(flagsContext(rcr, 0x2n, 0x802n))).toBe(true);
    expect(undefinedFlags.applies(flagsContext(rcr, 0x2n, 0x3n))).toBe(false);
    expect(undefinedFlags.applies(flagsContext([0x48, 0x01, 0xc0], 0x2n, 0x802n))).toBe(false); // add rax, rax
  });

  it("shutdown-state covers RF alone with both engines shut down", () => {
    const down = { ...base, cpu: { ...base.cpu, shutdown: true } };
    const ctx = (a: ArchState, b: ArchState) => ({ before: base, stateA: a, stateB: b, eventA: undefined, eventB: undefined, differences: compareStates(a, b, { rule: "architectural", memory: "all" }).differences });
    expect(shutdown.applies(ctx(down, { ...down, rflags: down.rflags | 0x10000n }))).toBe(true);
    expect(shutdown.applies(ctx(down, { ...down, rflags: down.rflags ^ 0x200n }))).toBe(false);
    expect(shutdown.applies(ctx(down, { ...base, rflags: down.rflags | 0x10000n }))).toBe(false);
  });
});

describe("the port-devices, access-order and shutdown-state (memory) gaps", () => {
  const base = vectorState("sysret64-basic");
  const ctx = (before: ArchState, a: ArchState, b: ArchState) => ({ before, stateA: a, stateB: b, eventA: undefined, eventB: undefined, differences: compareStates(a, b, { rule: "architectural", memory: "all" }).differences });

  it("port-devices covers RAX after IN only", () => {
    const gap = gapByName("port-devices")!;
    const rip = Number(base.rip); // identity-mapped in the vectors' layout
    const atIn = poke(base, rip, () => 0xe4); // in al, imm8
    const a = { ...atIn, gpr: atIn.gpr.map((v, i) => (i === 0 ? 0xffn : v)) };
    const b = { ...atIn, gpr: atIn.gpr.map((v, i) => (i === 0 ? 0n : v)) };
    expect(gap.applies(ctx(atIn, a, b))).toBe(true);
    const atMov = poke(base, rip, () => 0x90);
    expect(gap.applies(ctx(atMov, { ...a, memory: atMov.memory }, { ...b, memory: atMov.memory }))).toBe(false);
  });

  it("access-order covers CR2 a few bytes apart on one page, not addresses on other pages", () => {
    const gap = gapByName("access-order")!;
    expect(gap.applies(ctx(base, { ...base, cr2: 0x20000n }, { ...base, cr2: 0x20010n }))).toBe(true);
    expect(gap.applies(ctx(base, { ...base, cr2: 0x7ffffffffff8n }, { ...base, cr2: 0xfffffff8n }))).toBe(false);
  });

  it("shutdown-state covers the frame bytes a delivery that shut down left", () => {
    const gap = gapByName("shutdown-state")!;
    const down = { ...base, cpu: { ...base.cpu, shutdown: true } };
    expect(gap.applies(ctx(base, down, poke(down, Number(base.rip) + 0x100, (x) => x ^ 0x24)))).toBe(true);
    expect(gap.applies(ctx(base, base, poke(base, Number(base.rip) + 0x100, (x) => x ^ 0x24)))).toBe(false);
  });
});

describe("SYSRET-V1", () => {
  it("an amd SYSRET to a non-canonical RCX that faults at CPL 0 is grouped under SYSRET-V1", () => {
    const s = vectorState("sysret64-basic");
    const before = { ...s, gpr: s.gpr.map((v, i) => (i === 1 ? 0x0ab6_45c2_c059_4c10n : v)) };
    const spec = new SpecEngine();
    spec.load(before, "amd");
    const event = spec.step();
    const after = spec.state();
    expect(after.cs.dpl).toBe(3);
    // Engine B: #GP(0) at CPL 0, as Intel does (the state of the vector's #GP handler entry is
    // not needed: CPL 0 and another RIP are what the diagnosis reads).
    const b = { ...after, cs: { ...after.cs, dpl: 0, selector: 0x8 }, rip: 0xb0d0n };
    const at = attribute({ before, eventA: event, eventB: undefined, stateA: after, stateB: b, differences: compareStates(after, b, { rule: "architectural", memory: "all" }).differences, compared: ARCHITECTURAL }, "amd");
    expect(at.rule).toBe("SYSRET-V1");
    // The same with #UD's gate (vector 6, lower) sharing vector 13's handler: still #GP's.
    const gate6 = Number(before.idtr.base) + 16 * 6; // identity-mapped in the vectors' layout
    expect(readPhysical64(before.memory, BigInt(gate6)) & 0xffffn).toBe(0xb060n);
    const shared = poke(before, gate6, () => 0xd0);
    expect(vectorsAt(shared, 0xb0d0n)).toEqual([6, 13]);
    const sharedAt = attribute({ before: shared, eventA: event, eventB: undefined, stateA: after, stateB: b, differences: compareStates(after, b, { rule: "architectural", memory: "all" }).differences, compared: ARCHITECTURAL }, "amd");
    expect(sharedAt.rule).toBe("SYSRET-V1");
  });
});

describe("an emulator's step that goes on into a trap's handler", () => {
  // QEMU's SYSRET-V1 row (docs/deviations/): an amd SYSRET to a non-canonical RCX with R11.TF = 1.
  // The spec's step ends after SYSRET (CPL 3, RIP = RCX, the #DB trap pending); QEMU's step also
  // delivers that #DB, and it takes RF and VM from R11 and drops VIP. Engine B here: the spec's
  // own next step (the #DB delivery), with QEMU's RFLAGS in the pushed image and in the handler.
  const r11 = 0x374703n;
  const s = vectorState("sysret64-basic");
  const before = { ...s, gpr: s.gpr.map((v, i) => (i === 1 ? 0xcb3b_2f8a_45b3_63d1n : i === 11 ? r11 : v)) };
  const spec = new SpecEngine();
  spec.load(before, "amd");
  const eventA = spec.step();
  const stateA = spec.state();
  const trap = spec.step();
  const delivered = spec.state();
  const imageB = (r11 & 0x2f7fd7n) | 2n; // RF and VM from R11, VIP dropped: 0x274703, as QEMU pushed
  const handlerB = imageB & ~(0x100n | 0x200n | 0x4000n | 0x10000n | 0x20000n); // TF, IF, NT, RF, VM cleared by the delivery
  const rflagsSlot = translate((a) => readPhysical64(delivered.memory, a), delivered.cr3, delivered.gpr[4]! + 16n).physical!;
  let stateB: ArchState = { ...delivered, rflags: handlerB };
  for (let i = 0; i < 8; i++) stateB = poke(stateB, Number(rflagsSlot) + i, () => Number((imageB >> BigInt(8 * i)) & 0xffn));

  it("is recognised from engine B's frame, and no fault is claimed", () => {
    expect(eventA.kind).toBe("retired");
    expect(imageB).toBe(0x274703n);
    expect(handlerB).toBe(0x240403n);
    expect(stateA.cs.dpl).toBe(3);
    expect(stateA.cpu.pendingDebugTrap).toBe(true);
    expect(trap.kind === "delivered" && trap.vector).toBe(1);
    const at = attribute(divergence(before, eventA, stateA, stateB), "amd");
    expect(at.why).not.toMatch(/fault|Intel|#GP/);
    expect(at.why.startsWith(`engine B's step goes on into the handler of vector 1 (#DB): its frame holds RIP 0xcb3b2f8a45b363d1, CS 0x${stateA.cs.selector.toString(16)}, where the spec's step ends;`)).toBe(true);
    // What still differs after the spec's own delivery: RFLAGS in the handler and in the frame.
    expect(at.why).toContain(`regs.rflags 0x${(delivered.rflags).toString(16)} vs 0x${handlerB.toString(16)}`);
    expect(at.why).toMatch(/memory@0x[0-9a-f]+ 34 vs 27/); // the image's byte 2: VIP (bit 20) against RF, VM (bits 16, 17)
    expect(at.rule).not.toBe("SYSRET-V1");
    expect(at.rule).toBe("SYSRET-05");
  });

  it("is only step granularity when engine B's state is the spec's after its own delivery", () => {
    const at = attribute(divergence(before, eventA, stateA, delivered), "amd");
    expect(at.why).toMatch(/; after the spec's own delivery of it the states agree \(a difference of step granularity only\)$/);
  });

  it("is not step granularity when engine B differs in a field that did not differ before (DR6)", () => {
    // DR6.BS (the single-step trap's status) as before the step: DR6 was no difference then.
    expect(delivered.dr6).not.toBe(stateA.dr6);
    const noBs = attribute(divergence(before, eventA, stateA, { ...delivered, dr6: stateA.dr6 }), "amd");
    expect(noBs.why).toContain(`they still differ (spec vs engine B) in sregs.dr6 0x${delivered.dr6.toString(16)} vs 0x${stateA.dr6.toString(16)}`);
  });

  it("is not step granularity when engine B left bytes the spec's delivery wrote (the frame's SS slot)", () => {
    // The frame's SS slot (RSP + 32) left at its bytes before the delivery: those bytes were no
    // difference either (B did not write them), but the spec's delivery wrote them.
    const ssSlot = Number(translate((a) => readPhysical64(delivered.memory, a), delivered.cr3, delivered.gpr[4]! + 32n).physical!);
    let oldSs: ArchState = delivered;
    for (let i = 0; i < 8; i++) oldSs = poke(oldSs, ssSlot + i, () => stateA.memory.get(Math.floor((ssSlot + i) / 4096))?.[(ssSlot + i) % 4096] ?? 0);
    expect(readPhysical64(oldSs.memory, BigInt(ssSlot))).not.toBe(readPhysical64(delivered.memory, BigInt(ssSlot)));
    const atSs = attribute(divergence(before, eventA, stateA, oldSs), "amd");
    expect(atSs.why).toMatch(new RegExp(`they still differ \\(spec vs engine B\\) in memory@0x${ssSlot.toString(16)} `));
  });

  it("an engine B in vector 13's handler at CPL 0 is still the Intel way", () => {
    // The spec's intel profile on the same SYSRET: #GP(0) at CPL 0.
    const intel = new SpecEngine();
    intel.load(before, "intel");
    const gp = intel.step();
    expect(gp.kind === "delivered" && gp.vector).toBe(13);
    const at = attribute(divergence(before, eventA, stateA, intel.state()), "amd");
    expect(at.rule).toBe("SYSRET-V1");
    expect(at.why).toContain("faults at CPL 0 (#GP), the Intel way");
  });
});

describe("the IDT gates that point at engine B's RIP (vectorsAt)", () => {
  // sysret64-basic maps its first 2 MiB with one large page. Here: 4 KiB pages instead, linear
  // page 9 on physical frame 0x50 (not 9), and an IDT of 16 gates at 0x8ffc, so gate 0's low
  // quadword crosses from page 8 into page 9. Gate v points at 0xc000 + 16v.
  const base = vectorState("sysret64-basic");
  const memory = new Map(base.memory);
  const write = (address: number, value: bigint, bytes = 8) => {
    for (let i = 0; i < bytes; i++) {
      const a = address + i;
      const page = new Uint8Array(memory.get(Math.floor(a / 4096)) ?? new Uint8Array(4096));
      page[a % 4096] = Number((value >> BigInt(8 * i)) & 0xffn);
      memory.set(Math.floor(a / 4096), page);
    }
  };
  const pde = Number(translate((a) => readPhysical64(base.memory, a), base.cr3, 0n).entries.at(-1)!.address);
  expect(Number(readPhysical64(base.memory, BigInt(pde)) & 0x80n)).toBe(0x80); // a 2 MiB page
  write(pde, 0x40000n | 7n);
  for (let i = 0; i < 512; i++) write(0x40000 + 8 * i, BigInt(i === 9 ? 0x50000 : i * 4096) | 3n);
  const idt = 0x8ffc;
  const linearToPhysical = (a: number) => (a >= 0x9000 && a < 0xa000 ? 0x50000 + (a - 0x9000) : a);
  const gates: Record<number, Partial<ReturnType<typeof interruptGate>>> = {
    3: { type: 0xc }, // a call gate: no delivery goes through it in long mode
    5: { s: 1 }, // not a system descriptor
    7: { type: 0xf }, // a trap gate
    9: { p: 0 },
  };
  for (let v = 0; v < 16; v++) {
    const [low, high] = encodeGate({ ...interruptGate(0xc000n + 16n * BigInt(v), 8), ...gates[v] });
    for (const [k, q] of [low, high].entries()) for (let i = 0; i < 8; i++) write(linearToPhysical(idt + 16 * v + 8 * k + i), q >> BigInt(8 * i), 1);
  }
  const s: ArchState = { ...base, memory, idtr: { base: BigInt(idt), limit: 16 * 16 - 1 } };

  it("reads a gate whose quadword crosses a page from both pages", () => {
    expect(translate((a) => readPhysical64(memory, a), s.cr3, 0x9000n).physical).toBe(0x50000n);
    expect(vectorsAt(s, 0xc000n)).toEqual([0]);
    expect(vectorsAt(s, 0xc010n)).toEqual([1]);
  });

  it("counts only present interrupt and trap gates", () => {
    expect(vectorsAt(s, 0xc070n)).toEqual([7]);
    expect(vectorsAt(s, 0xc030n)).toEqual([]);
    expect(vectorsAt(s, 0xc050n)).toEqual([]);
    expect(vectorsAt(s, 0xc090n)).toEqual([]);
  });
});
