// PRIO-01..04, SHADOW-01..09, TF-01/02, HLT-03..06, NMI-01..05 and the `step` / `run` contract.
import { describe, expect, it } from "vitest";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RFLAGS, RSP } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { canWake, run } from "../../../spec/step/step.ts";
import { kernelMachine, userMachine, withCode, withRegs } from "../../helpers/fixture.ts";
import { HANDLER, stepOnce, steps, withGate } from "./build-delivery.ts";

type Cpu = Machine["cpu"];
const cpu = (m: Machine, patch: Partial<Cpu>): Machine => ({ ...m, cpu: { ...m.cpu, ...patch } });
const savedRip = (m: Machine): bigint => m.memory.read(m.gpr[RSP]!, 8);
const k = (code: number[], rflags = 2n, patch: Partial<Cpu> = {}) => cpu(withCode({ ...kernelMachine(), rflags }, code), patch);

const STI = 0xfb, CLI = 0xfa, NOP = 0x90, HLT = 0xf4;
const INC_RBX = [0x48, 0xff, 0xc3];
const MOV_SS_AX = [0x8e, 0xd0];

describe("PRIO-01 / PRIO-02: one event per boundary, in priority order", () => {
  it("single-step trap, then NMI; the interrupt waits while the handlers run with IF = 0", () => {
    const m0 = withRegs(k([NOP], 0x202n, { pendingDebugTrap: true, pendingNmi: true, pendingIrq: 0x20 }), { rax: 0x10n });
    const { results, state } = steps(m0, 2);
    expect(results.map((r) => r.event.kind === "delivered" && r.event.vector)).toEqual([1, 2]);
    expect(state.cpu.pendingIrq).toBe(0x20);
    expect(stepOnce(state).event.kind).toBe("halted");
  });
  it("a masked interrupt stays pending across instructions", () => {
    const { state } = steps(k([NOP, NOP], 2n, { pendingIrq: 0x20 }), 2);
    expect(state.rip).toBe(0x10002n);
    expect(state.cpu.pendingIrq).toBe(0x20);
  });
  it("an external interrupt is delivered once", () => {
    const r = stepOnce(k([NOP], 0x202n, { pendingIrq: 0x21 }));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 0x21, source: "external" });
    expect(r.state.cpu.pendingIrq).toBeNull();
    expect(savedRip(r.state)).toBe(0x10000n);
  });
});

describe("PRIO-03: single-step trap and a pending interrupt", () => {
  it("#DB first; through a trap gate the interrupt comes at the #DB handler's first instruction", () => {
    const m0 = withGate(k(INC_RBX, 0x302n, { pendingIrq: 0x20 }), 1, { type: 0xf });
    // The interrupt is taken before INC (IF = 1 at the first boundary): clear it to start.
    const started = cpu(m0, { pendingIrq: null });
    const a = stepOnce(started);
    expect(a.state.cpu.pendingDebugTrap).toBe(true);
    const b = stepOnce(cpu(a.state, { pendingIrq: 0x20 }));
    expect(b.event).toMatchObject({ vector: 1 });
    expect(savedRip(b.state)).toBe(0x10003n);
    const c = stepOnce(b.state);
    expect(c.event).toMatchObject({ vector: 0x20 });
    expect(savedRip(c.state)).toBe(HANDLER(1));
  });
});

describe("PRIO-TPR: CR8", () => {
  it("an interrupt whose class is not above CR8 waits; a higher class is taken; CR8 = 0 masks none", () => {
    expect(stepOnce({ ...k([NOP], 0x202n, { pendingIrq: 0x2f }), cr8: 2n }).event.kind).toBe("retired");
    expect(stepOnce({ ...k([NOP], 0x202n, { pendingIrq: 0x30 }), cr8: 2n }).event).toMatchObject({ vector: 0x30 });
    expect(stepOnce(k([NOP], 0x202n, { pendingIrq: 14 })).event).toMatchObject({ vector: 14, errorCode: undefined });
  });
});

describe("SHADOW-01..03: the STI shadow", () => {
  it("sti; nop: the interrupt is taken after the NOP, not after the STI", () => {
    const { results, state } = steps(k([STI, NOP, NOP], 2n, { pendingIrq: 0x20 }), 3);
    expect(results.map((r) => r.event.kind)).toEqual(["retired", "retired", "delivered"]);
    expect(savedRip(state)).toBe(0x10002n);
  });
  it("STI with IF already 1 opens no shadow", () => {
    expect(stepOnce(k([STI], 0x202n)).state.cpu.shadow).toBe("none");
  });
  it("SHADOW-02: the shadow ends with the next instruction, or when an event is delivered", () => {
    expect(steps(k([STI, NOP]), 2).state.cpu.shadow).toBe("none");
    const faulting = stepOnce(k([0x0f, 0x0b], 0x202n, { shadow: "sti" }));
    expect(faulting.event).toMatchObject({ vector: 6 });
    expect(faulting.state.cpu.shadow).toBe("none");
  });
  it("SHADOW-03: sti; cli never lets the interrupt in", () => {
    const { results, state } = steps(k([STI, CLI, NOP], 2n, { pendingIrq: 0x20 }), 3);
    expect(results.every((r) => r.event.kind === "retired")).toBe(true);
    expect(state.cpu.pendingIrq).toBe(0x20);
  });
});

describe("SHADOW-04: NMI in the STI shadow is a profile choice", () => {
  it("intel profile (stiShadowBlocksNmi = false): the NMI is taken at once", () => {
    expect(stepOnce(k([NOP], 0x202n, { shadow: "sti", pendingNmi: true })).event).toMatchObject({ vector: 2 });
  });
  it("a profile that blocks: the NMI waits one instruction", () => {
    const profile = { ...INTEL, stiShadowBlocksNmi: true };
    const a = stepOnce(k([NOP], 0x202n, { shadow: "sti", pendingNmi: true }), { profile });
    expect(a.event.kind).toBe("retired");
    expect(stepOnce(a.state, { profile }).event).toMatchObject({ vector: 2 });
  });
});

describe("SHADOW-05..07, SHADOW-09: the MOV SS shadow", () => {
  const movss = (code: number[], rflags = 2n, patch: Partial<Cpu> = {}) => withRegs(k([...MOV_SS_AX, ...code], rflags, patch), { rax: 0x10n });
  it("SHADOW-05: with TF = 1 the trap after MOV SS is held over the next instruction and merges with its trap (vector mov-ss-shadow-single-step)", () => {
    const { results, state } = steps(movss(INC_RBX, 0x102n), 3);
    expect(results.map((r) => r.event.kind)).toEqual(["retired", "retired", "delivered"]);
    expect(savedRip(state)).toBe(0x10005n);
    expect(state.cpu.pendingDebugTrap).toBe(false);
  });
  it("SHADOW-05: NMI and interrupts are held too", () => {
    const a = stepOnce(movss([NOP], 0x202n));
    const b = stepOnce(cpu(a.state, { pendingNmi: true, pendingIrq: 0x20 }));
    expect(b.event.kind).toBe("retired");
    expect(stepOnce(b.state).event).toMatchObject({ vector: 2 });
  });
  it("SHADOW-06: mov ss; int 0x80 with TF = 1: the held #DB arrives at the INT handler's first instruction", () => {
    const { results, state } = steps(movss([0xcd, 0x80], 0x102n), 3);
    expect(results.map((r) => r.event.kind === "delivered" ? r.event.vector : r.event.kind)).toEqual(["retired", 0x80, 1]);
    expect(savedRip(state)).toBe(HANDLER(0x80));
  });
  it("SHADOW-07: a second MOV SS does not extend the shadow", () => {
    const a = steps(movss([...MOV_SS_AX, NOP], 0x202n), 2);
    expect(a.state.cpu.shadow).toBe("none");
    const b = stepOnce(cpu(a.state, { pendingIrq: 0x20 }));
    expect(b.event).toMatchObject({ vector: 0x20 });
    expect(savedRip(b.state)).toBe(0x10004n);
  });
  it("SHADOW-09: a fault of the shadowed instruction is delivered at once", () => {
    const r = stepOnce(k([0x0f, 0x0b], 2n, { shadow: "movss" }));
    expect(r.event).toMatchObject({ kind: "delivered", vector: 6 });
  });
});

describe("SHADOW-08 / NMI-05: SYSRET", () => {
  const sysret = (r11: bigint, patch: Partial<Cpu> = {}) =>
    withRegs(k([0x48, 0x0f, 0x07], 2n, patch), { rcx: 0x200000n, r11, rsp: 0x210000n });
  it("SYSRET-10: SYSRET opens no shadow: an interrupt pending with R11.IF = 1 is taken at the first user boundary, at CPL 3", () => {
    const a = stepOnce(sysret(0x202n, { pendingIrq: 0x20 }));
    expect(a.state.cpu.shadow).toBe("none");
    const b = stepOnce(a.state);
    expect(b.event).toMatchObject({ vector: 0x20 });
    expect(b.state.memory.read(b.state.gpr[RSP]! + 8n, 8)).toBe(0x2bn);
  });
  it("NMI blocking survives SYSRET", () => {
    expect(stepOnce(sysret(0x202n, { nmiBlocked: true })).state.cpu.nmiBlocked).toBe(true);
  });
});

describe("SYSCALL-11: FMASK.IF is applied as part of SYSCALL", () => {
  // User code `syscall`; the LSTAR handler starts with a NOP. The interrupt is raised while SYSCALL
  // executes (pending at the boundary after it).
  const syscallThen = (fmask: bigint) => {
    const m0 = { ...withCode(userMachine(), [0x0f, 0x05]), fmask };
    const a = stepOnce({ ...m0, memory: m0.memory.writeBytes(m0.lstar, Uint8Array.of(NOP)) });
    expect(a.event.kind).toBe("retired");
    return stepOnce(cpu(a.state, { pendingIrq: 0x20 }));
  };
  it("SYSCALL-11: with IF in FMASK the interrupt is not taken before the first handler instruction", () => {
    const b = syscallThen(RFLAGS.IF);
    expect(b.event.kind).toBe("retired");
    expect(b.state.cpu.pendingIrq).toBe(0x20);
  });
  it("SYSCALL-11: without IF in FMASK it is taken there, at CPL 0 on the user stack (no stack switch)", () => {
    const b = syscallThen(0n);
    expect(b.event).toMatchObject({ kind: "delivered", vector: 0x20 });
    expect(b.state.gpr[RSP]).toBe(0x210000n - 40n);
    expect(savedRip(b.state)).toBe(userMachine().lstar);
    expect(b.state.memory.read(b.state.gpr[RSP]! + 24n, 8)).toBe(0x210000n);
  });
  it("SYSCALL-11: an STI shadow over SYSCALL lets nothing in either (the mask is in force at the next boundary)", () => {
    const m0 = { ...k([STI, 0x0f, 0x05], 2n, { pendingIrq: 0x20 }), fmask: RFLAGS.IF };
    const { results, state } = steps({ ...m0, memory: m0.memory.writeBytes(m0.lstar, Uint8Array.of(NOP)) }, 3);
    expect(results.map((r) => r.event.kind)).toEqual(["retired", "retired", "retired"]);
    expect(state.rip).toBe(m0.lstar + 1n);
    expect(state.cpu.pendingIrq).toBe(0x20);
  });
});

describe("TF-01 / TF-02: single-step", () => {
  it("an instruction that starts with TF = 1 leaves a #DB trap; saved RIP = the next instruction, RF as it is", () => {
    const { results, state } = steps(k(INC_RBX, 0x102n), 2);
    expect(results[1]!.event).toMatchObject({ kind: "delivered", vector: 1, errorCode: undefined, source: "exception" });
    expect(savedRip(state)).toBe(0x10003n);
    expect(state.memory.read(state.gpr[RSP]! + 16n, 8)).toBe(0x102n);
    expect(state.rflags & RFLAGS.TF).toBe(0n);
  });
  it("POPF setting TF: no trap after the POPF, one after the next instruction (FLAGS-03)", () => {
    const m0 = k([0x68, 0x02, 0x01, 0x00, 0x00, 0x9d, ...INC_RBX]);
    const { results } = steps(m0, 4);
    expect(results.map((r) => r.event.kind)).toEqual(["retired", "retired", "retired", "delivered"]);
  });
  it("POPF clearing TF still traps after itself", () => {
    const m0 = withRegs(k([0x9d], 0x102n), { rsp: 0x1fff8n });
    const stacked = { ...m0, memory: m0.memory.write(0x1fff8n, 8, 2n) };
    const { results, state } = steps(stacked, 2);
    expect(results.map((r) => r.event.kind)).toEqual(["retired", "delivered"]);
    expect(savedRip(state)).toBe(0x10001n);
    expect(state.memory.read(state.gpr[RSP]! + 16n, 8)).toBe(2n);
  });
  it("a faulting instruction leaves no trap", () => {
    const r = stepOnce(k([0x0f, 0x0b], 0x102n));
    expect(r.event).toMatchObject({ vector: 6 });
    expect(r.state.cpu.pendingDebugTrap).toBe(false);
  });
  it("SYSCALL with TF in FMASK: no trap (SYSCALL-10, vector syscall-tf-masked)", () => {
    const m0 = { ...k([0x0f, 0x05], 0x102n), fmask: 0x100n };
    expect(stepOnce(m0).state.cpu.pendingDebugTrap).toBe(false);
  });
  it("SYSCALL keeping TF: the trap comes at the LSTAR handler before its first instruction", () => {
    const m0 = { ...k([0x0f, 0x05], 0x102n), fmask: 0n };
    const { results, state } = steps(m0, 2);
    expect(results[1]!.event).toMatchObject({ vector: 1 });
    expect(savedRip(state)).toBe(m0.lstar);
  });
  it("SYSRET loading TF = 1 traps at once, at CPL 3, before the first user instruction (SYSRET-09)", () => {
    const m0 = withRegs(k([0x48, 0x0f, 0x07]), { rcx: 0x200000n, r11: 0x302n, rsp: 0x210000n });
    const { results, state } = steps(m0, 2);
    expect(results[1]!.event).toMatchObject({ vector: 1 });
    expect(savedRip(state)).toBe(0x200000n);
    expect(state.memory.read(state.gpr[RSP]! + 8n, 8)).toBe(0x2bn);
  });
  it("SYSRET from a single-stepped kernel with R11.TF = 0: no trap", () => {
    const m0 = withRegs(k([0x48, 0x0f, 0x07], 0x102n), { rcx: 0x200000n, r11: 0x202n, rsp: 0x210000n });
    expect(stepOnce(m0).state.cpu.pendingDebugTrap).toBe(false);
  });
});

describe("HLT-03..06 / NMI-04: halting and waking", () => {
  it("HLT-03 / PRIO-04: an interrupt wakes a halted CPU; saved RIP = after HLT", () => {
    const halted = stepOnce(k([HLT], 0x202n)).state;
    expect(halted.cpu.halted).toBe(true);
    const r = stepOnce(cpu(halted, { pendingIrq: 0x20 }));
    expect(r.event).toMatchObject({ vector: 0x20 });
    expect(r.state.cpu.halted).toBe(false);
    expect(savedRip(r.state)).toBe(0x10001n);
  });
  it("HLT-04: halted with IF = 0 and no NMI: no step, the run stops `hlt`", () => {
    const halted = cpu(stepOnce(k([HLT])).state, { pendingIrq: 0x20 });
    expect(canWake(halted)).toBe(false);
    expect(stepOnce(halted).event.kind).toBe("halted");
    const r = run(k([HLT], 2n, { pendingIrq: 0x20 }), { maxSteps: 10 });
    expect(r).toMatchObject({ reason: "hlt", steps: 1 });
    expect(r.state.rip).toBe(0x10001n);
  });
  it("NMI-04: an NMI wakes HLT even with IF = 0; a blocked one does not", () => {
    const halted = stepOnce(k([HLT])).state;
    expect(canWake(cpu(halted, { pendingNmi: true }))).toBe(true);
    expect(canWake(cpu(halted, { pendingNmi: true, nmiBlocked: true }))).toBe(false);
    expect(stepOnce(cpu(halted, { pendingNmi: true })).event).toMatchObject({ vector: 2 });
  });
  it("HLT-05: sti; hlt — the HLT runs in the shadow and the interrupt wakes it after", () => {
    const { results, state } = steps(k([STI, HLT], 2n, { pendingIrq: 0x20 }), 3);
    expect(results.map((r) => r.event.kind)).toEqual(["retired", "halted", "delivered"]);
    expect(savedRip(state)).toBe(0x10002n);
  });
  it("HLT-06: HLT with TF = 1 — the trap waits for the wake-up and comes before the waking interrupt", () => {
    const halted = stepOnce(k([HLT], 0x302n)).state;
    expect(halted.cpu.pendingDebugTrap).toBe(true);
    expect(run(halted, { maxSteps: 5 }).reason).toBe("hlt");
    const woken = cpu(halted, { pendingIrq: 0x20 });
    const a = stepOnce(woken);
    expect(a.event).toMatchObject({ vector: 1 });
    expect(savedRip(a.state)).toBe(0x10001n);
    expect(a.state.cpu.pendingIrq).toBe(0x20);
  });
  it("HLT-06: a step of a halted CPU with only the single-step trap pending takes nothing: the trap waits (lockstep found step() delivering it)", () => {
    const halted = stepOnce(k([HLT], 0x302n)).state;
    const idle = stepOnce(halted);
    expect(idle.event).toMatchObject({ kind: "halted" });
    expect(idle.state).toEqual(halted);
  });
});

describe("NMI-01..03: NMI delivery and blocking", () => {
  it("NMI-01: taken with IF = 0, from CPL 3 through a DPL-0 gate, RSP0 stack", () => {
    const r = stepOnce(cpu(withCode({ ...userMachine(), rflags: 2n }, [NOP]), { pendingNmi: true }));
    expect(r.event).toMatchObject({ vector: 2, source: "nmi" });
    expect(r.state.gpr[RSP]).toBe(0x20000n - 40n);
  });
  it("NMI-02: while blocked, a second NMI stays latched", () => {
    const a = stepOnce(k([NOP], 2n, { pendingNmi: true }));
    expect(a.state.cpu.nmiBlocked).toBe(true);
    const b = stepOnce(cpu(a.state, { pendingNmi: true }));
    expect(b.event.kind).toBe("halted");
    expect(b.state.cpu.pendingNmi).toBe(true);
  });
  it("NMI-03: the next IRET opens NMIs and the latched NMI is taken after it", () => {
    // Handler for 2 is `hlt`; replace it with IRETQ.
    const m0 = cpu(withCode(k([NOP]), []), { pendingNmi: true });
    const withIret = { ...m0, memory: m0.memory.writeBytes(HANDLER(2), Uint8Array.of(0x48, 0xcf)) };
    const a = stepOnce(withIret);
    const b = stepOnce(cpu(a.state, { pendingNmi: true }));
    expect(b.event.kind).toBe("retired");
    expect(b.state.cpu.nmiBlocked).toBe(false);
    expect(b.state.rip).toBe(0x10000n);
    const c = stepOnce(b.state);
    expect(c.event).toMatchObject({ vector: 2 });
  });
});

describe("RF-01 / RF-02: RF across instructions", () => {
  it("RF-01: a completed instruction clears RF", () => {
    expect(stepOnce(k([NOP], 2n | RFLAGS.RF)).state.rflags).toBe(2n);
  });
  it("RF-02: IRETQ loads RF from the image (it survives the IRET itself); the next instruction clears it", () => {
    const m0 = withRegs(k([0x48, 0xcf]), { rsp: 0x1f000n });
    const framed = { ...m0, memory: m0.memory.write(0x1f000n, 8, 0x10100n).write(0x1f008n, 8, 8n).write(0x1f010n, 8, 0x10002n).write(0x1f018n, 8, 0x1f800n).write(0x1f020n, 8, 0x10n).writeBytes(0x10100n, Uint8Array.of(NOP)) };
    const a = stepOnce(framed);
    expect(a.state.rflags).toBe(0x10002n);
    expect(stepOnce(a.state).state.rflags).toBe(2n);
  });
});

describe("step and run", () => {
  it("delivery `stop`: a fault ends the step with the machine at the faulting instruction", () => {
    const m0 = k([0x0f, 0x0b]);
    const r = stepOnce(m0, { delivery: "stop" });
    expect(r.event).toMatchObject({ kind: "fault", rip: 0x10000n, fault: { vector: 6 } });
    expect(r.state.rip).toBe(0x10000n);
    expect(r.state.gpr).toEqual(m0.gpr);
    expect(run(m0, { maxSteps: 5, delivery: "stop" })).toMatchObject({ reason: "fault", steps: 1 });
  });
  it("delivery `stop`: INT n whose delivery faults stops at the INT", () => {
    const r = stepOnce(withCode(userMachine(), [0xcd, 0x0e]), { delivery: "stop" });
    expect(r.event).toMatchObject({ kind: "fault", fault: { vector: 13, errorCode: 0x72 } });
    expect(r.state.rip).toBe(0x200000n);
  });
  it("a triple fault stops the run with `shutdown`", () => {
    const r = run({ ...k([0x0f, 0x0b]), idtr: { base: 0x9000n, limit: 0 } }, { maxSteps: 5 });
    expect(r).toMatchObject({ reason: "shutdown", steps: 1 });
  });
  it("the step limit stops a spinning run", () => {
    expect(run(k([0xeb, 0xfe]), { maxSteps: 7 })).toMatchObject({ reason: "limit", steps: 7 });
  });
});
