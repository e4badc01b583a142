// DF-01..07: faults raised while delivering an event.
import { describe, expect, it } from "vitest";
import { fault } from "../../../spec/fault.ts";
import { RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { afterNestedFault, deliver, deliverWithNesting } from "../../../spec/transitions/double-fault.ts";
import {
  doubleFaultClass, exceptionEvent, externalEvent, NMI_EVENT, softwareEvent,
} from "../../../spec/transitions/exception-classes.ts";
import { kernelMachine, userMachine, withCode } from "../../helpers/fixture.ts";
import { asMachine, frameAt, HANDLER, stepOnce, withGate, withTss } from "./build-delivery.ts";

const ex = (v: number, ec?: number) => exceptionEvent(fault("TEST", v, ec));

describe("EXC-01 / DF-01: double-fault classes", () => {
  it("#DE, #TS, #NP, #SS, #GP are contributory; #PF page-fault class; the rest benign", () => {
    for (const v of [0, 10, 11, 12, 13]) expect(doubleFaultClass(ex(v))).toBe("contributory");
    expect(doubleFaultClass(ex(14))).toBe("page-fault");
    for (const v of [1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19]) expect(doubleFaultClass(ex(v))).toBe("benign");
  });
  it("INT n, INT1, NMI and external interrupts are benign whatever their vector", () => {
    for (const e of [softwareEvent(13, "software"), softwareEvent(1, "int1"), NMI_EVENT, externalEvent(14)]) expect(doubleFaultClass(e)).toBe("benign");
  });
});

describe("DF-03: the outcome table", () => {
  const second = (v: number) => fault("TEST", v, 0);
  it("contributory then contributory → #DF", () => expect(afterNestedFault(ex(13), second(11)).vector).toBe(8));
  it("contributory then page fault → the #PF, serially", () => expect(afterNestedFault(ex(13), second(14)).vector).toBe(14));
  it("page fault then contributory or page fault → #DF", () => {
    expect(afterNestedFault(ex(14), second(13)).vector).toBe(8);
    expect(afterNestedFault(ex(14), second(14)).vector).toBe(8);
  });
  it("benign then anything → the second, serially", () => {
    expect(afterNestedFault(ex(6), second(13)).vector).toBe(13);
    expect(afterNestedFault(externalEvent(0x20), second(14)).vector).toBe(14);
  });
});

describe("DF-02 / DF-04: #DF delivery", () => {
  it("#NP while delivering #GP becomes #DF: vector 8, error code 0, saved RIP of the interrupted instruction", () => {
    // Gate 13 not present: delivering the #GP raises #NP(13·8 + 2 + 1), contributory after contributory.
    const m0 = withGate(kernelMachine(), 13, { present: 0 });
    const out = deliverWithNesting(m0, m0, ex(13, 0), INTEL, null);
    expect(out.nested.map((f) => [f.vector, f.errorCode])).toEqual([[11, 0x6b]]);
    expect(out.delivered?.vector).toBe(8);
    const m = out.state;
    expect(m.rip).toBe(HANDLER(8));
    expect(frameAt(m, m.gpr[RSP]!, 3)).toEqual([0n, 0x10000n, 0x08n]);
    expect(m.memory.read(m.gpr[RSP]! + 24n, 8) & RFLAGS.RF).toBe(RFLAGS.RF);
  });
  it("a #DF gate with IST rescues a bad RSP0 (vector df-rsp0-unmapped-ist)", () => {
    const m0 = withGate(withTss(userMachine(), 4, 0x700000n), 8, { ist: 1 });
    const m = asMachine(deliver(m0, ex(6), INTEL));
    expect(m.rip).toBe(HANDLER(8));
    expect(m.gpr[RSP]).toBe(0x21000n - 48n);
    expect(m.cr2).toBe(0x6ffff8n);
  });
});

describe("DF-05: triple fault", () => {
  it("any fault while delivering #DF shuts the processor down", () => {
    const m0 = { ...kernelMachine(), idtr: { base: 0x9000n, limit: 0 } };
    const m = asMachine(deliver(m0, ex(6), INTEL));
    expect(m.cpu.shutdown).toBe(true);
    expect(m.rip).toBe(0x10000n);
  });
  it("the step reports `shutdown` and the machine stays at the faulting instruction", () => {
    const m0 = withCode({ ...userMachine(), idtr: { base: 0x9000n, limit: 0x5f } }, [0x0f, 0x0b]);
    const r = stepOnce(m0);
    expect(r.event.kind).toBe("shutdown");
    expect(r.state.cpu.shutdown).toBe(true);
    expect(r.state.rip).toBe(0x200000n);
    expect(r.state.cs).toEqual(m0.cs);
    expect(stepOnce(r.state).event.kind).toBe("shutdown");
  });
});

describe("DF-06: CR2 for every #PF", () => {
  it("a #PF that escalates to #DF still writes CR2", () => {
    // #PF on delivery of a #PF: both push to an unmapped RSP0.
    const m0 = withGate(withTss(userMachine(), 4, 0x700000n), 8, { ist: 1 });
    const out = deliverWithNesting(m0, m0, exceptionEvent(fault("TEST", 14, 4, 0x600000n)), INTEL, null);
    expect(out.delivered?.vector).toBe(8);
    expect(out.state.cr2).toBe(0x6ffff8n);
  });
  it("a #PF while delivering #DF shuts down with CR2 written", () => {
    const m0 = withTss(userMachine(), 4, 0x700000n);
    const out = deliverWithNesting(m0, m0, ex(6), INTEL, null);
    expect(out.delivered).toBeNull();
    expect(out.state.cpu.shutdown).toBe(true);
    expect(out.state.cr2).toBe(0x6ffff8n);
  });
});

describe("DF-07: serial delivery", () => {
  it("INT n whose gate is not present: the #NP is delivered instead (benign first event)", () => {
    const m0 = withGate(kernelMachine(), 0x40, { present: 0 });
    const out = deliverWithNesting(m0, m0, softwareEvent(0x40, "software"), INTEL, null);
    expect(out.delivered).toMatchObject({ vector: 11, errorCode: 0x202 });
    expect(out.state.rip).toBe(HANDLER(11));
  });
  it("an external interrupt whose delivery page-faults: the #PF is delivered", () => {
    const m0 = withGate(kernelMachine(), 0x20, { ist: 2 });
    const bad = withTss(m0, 0x2c, 0x700000n);
    const out = deliverWithNesting(bad, bad, externalEvent(0x20), INTEL, null);
    expect(out.delivered?.vector).toBe(14);
    expect(out.state.cr2).toBe(0x6ffff8n);
  });
  it("a contributory fault then a #PF: the #PF is delivered, no #DF", () => {
    const m0 = withGate(withTss(userMachine(), 4, 0x700000n), 14, { ist: 1 });
    const out = deliverWithNesting(m0, m0, ex(13, 0), INTEL, null);
    expect(out.delivered?.vector).toBe(14);
    expect(out.state.gpr[RSP]).toBe(0x21000n - 48n);
  });
});
