// SWINT-01..06, EXC-03: INT n / INT3 / INT1 / INTO through the step loop.
import { describe, expect, it } from "vitest";
import { RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { kernelMachine, userMachine, withCode, USER_CS32 } from "../../helpers/fixture.ts";
import { frameAt, HANDLER, stepOnce, withDescriptor, descriptor, withGate } from "./build-delivery.ts";

describe("SWINT-01: INT imm8", () => {
  it("INT 0x80 at CPL 0: vector 0x80, saved RIP = next instruction, no error code", () => {
    const r = stepOnce(withCode(kernelMachine(), [0xcd, 0x80]));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 0x80, errorCode: undefined, source: "software", rip: 0x10000n });
    expect(r.state.rip).toBe(HANDLER(0x80));
    expect(frameAt(r.state, r.state.gpr[RSP]!, 5)).toEqual([0x10002n, 0x08n, 2n, 0x20000n, 0x10n]);
  });
  it("INT 14 pushes no error code and leaves CR2 alone", () => {
    const r = stepOnce(withCode({ ...kernelMachine(), cr2: 0x55n }, [0xcd, 0x0e]));
    expect(r.state.gpr[RSP]).toBe(0x20000n - 40n);
    expect(r.state.cr2).toBe(0x55n);
  });
});

describe("SWINT-02: gate DPL from CPL 3", () => {
  it("INT 14 at CPL 3 on a DPL-0 gate: #GP(0x72), saved RIP = the INT, RF = 1, handler 14 not entered", () => {
    const r = stepOnce(withCode(userMachine(), [0xcd, 0x0e]));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 13, errorCode: 0x72, source: "exception" });
    expect(frameAt(r.state, r.state.gpr[RSP]!, 6)).toEqual([0x72n, 0x200000n, 0x2bn, 0x202n | RFLAGS.RF, 0x210000n, 0x23n]);
  });
});

describe("SWINT-03: INT3", () => {
  it("CC at CPL 3 through a DPL-3 gate: vector 3, saved RIP after the 1-byte CC", () => {
    const r = stepOnce(withCode(withGate(userMachine(), 3, { dpl: 3 }), [0xcc]));
    expect(r.event).toMatchObject({ vector: 3, source: "software" });
    expect(r.state.memory.read(r.state.gpr[RSP]!, 8)).toBe(0x200001n);
  });
  it("CD 03 behaves the same with a 2-byte return", () => {
    const r = stepOnce(withCode(withGate(userMachine(), 3, { dpl: 3 }), [0xcd, 0x03]));
    expect(r.state.memory.read(r.state.gpr[RSP]!, 8)).toBe(0x200002n);
  });
  it("CC at CPL 3 through a DPL-0 gate: #GP(0x1a)", () => {
    expect(stepOnce(withCode(userMachine(), [0xcc])).event).toMatchObject({ vector: 13, errorCode: 0x1a });
  });
});

describe("SWINT-04: INT1 (ICEBP)", () => {
  it("F1 at CPL 3 through a DPL-0 gate: delivered as vector 1, no DPL check, saved RIP after F1", () => {
    const r = stepOnce(withCode(userMachine(), [0xf1]));
    // Reported as an exception (EXT = 1), not as a software interrupt.
    expect(r.event).toMatchObject({ kind: "delivered", vector: 1, errorCode: undefined, source: "exception" });
    expect(frameAt(r.state, r.state.gpr[RSP]!, 3)).toEqual([0x200001n, 0x2bn, 0x202n]);
  });
  it("EXC-05: a nested fault while delivering INT1 has EXT = 1: #NP(0x0b)", () => {
    const r = stepOnce(withCode(withGate(userMachine(), 1, { present: 0 }), [0xf1]));
    expect(r.event).toMatchObject({ vector: 11, errorCode: 0x0b });
  });
  it("EXC-05: while INT n's nested faults have EXT = 0: #NP(0x0a)", () => {
    const r = stepOnce(withCode(withGate(kernelMachine(), 1, { present: 0 }), [0xcd, 0x01]));
    expect(r.event).toMatchObject({ vector: 11, errorCode: 0x0a });
  });
});

describe("SWINT-05: INTO", () => {
  it("#UD in 64-bit mode, saved RIP = the INTO", () => {
    const r = stepOnce(withCode({ ...kernelMachine(), rflags: 2n | RFLAGS.OF }, [0xce]));
    expect(r.event).toMatchObject({ vector: 6 });
    expect(r.state.memory.read(r.state.gpr[RSP]!, 8)).toBe(0x10000n);
  });
  it("in compatibility mode with OF = 1: vector 4 as a software interrupt (DPL checked)", () => {
    const compat = { ...userMachine(), cs: USER_CS32, rflags: 0x202n | RFLAGS.OF };
    const ok = stepOnce(withCode(withGate(compat, 4, { dpl: 3 }), [0xce]));
    expect(ok.event).toMatchObject({ vector: 4, source: "software" });
    expect(ok.state.memory.read(ok.state.gpr[RSP]!, 8)).toBe(0x200001n);
    expect(stepOnce(withCode(compat, [0xce])).event).toMatchObject({ vector: 13, errorCode: 0x22 });
  });
  it("in compatibility mode with OF = 0: nothing happens", () => {
    const r = stepOnce(withCode({ ...userMachine(), cs: USER_CS32 }, [0xce]));
    expect(r.event.kind).toBe("retired");
    expect(r.state.rip).toBe(0x200001n);
  });
});

describe("SWINT-06: TF and INT n", () => {
  it("INT n with TF = 1: the handler starts with TF = 0 and no single-step trap is pending", () => {
    const r = stepOnce(withCode({ ...kernelMachine(), rflags: 0x102n }, [0xcd, 0x80]));
    expect(r.state.rflags & RFLAGS.TF).toBe(0n);
    expect(r.state.cpu.pendingDebugTrap).toBe(false);
    expect(r.state.memory.read(r.state.gpr[RSP]! + 16n, 8)).toBe(0x102n);
  });
});

describe("EXC-03: saved RIP", () => {
  it("a fault saves the faulting instruction's RIP (UD2)", () => {
    const r = stepOnce(withCode(kernelMachine(), [0x0f, 0x0b]));
    expect(r.state.memory.read(r.state.gpr[RSP]!, 8)).toBe(0x10000n);
  });
  it("a fault in a conforming DPL-0 handler segment target keeps the frame layout", () => {
    const m = withDescriptor(withGate(userMachine(), 6, { selector: 0x50 }), 0x50, descriptor({ type: 0xf, dpl: 0, l: 1 }));
    const r = stepOnce(withCode(m, [0x0f, 0x0b]));
    expect(r.state.cs.selector).toBe(0x53);
    expect(r.state.memory.read(r.state.gpr[RSP]!, 8)).toBe(0x200000n);
  });
});
