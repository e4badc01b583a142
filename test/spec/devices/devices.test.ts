// The devices of docs/devices.md inside the engines (spec/devices/devices.ts): every engine whose
// capabilities say `devices` runs these through the Engine interface (the registry decides, so
// impl joins as soon as it implements them); the rules are checked on spec's step coverage.
import { describe, expect, it } from "vitest";
import { createEngine, ENGINES } from "../../../engines/registry.ts";
import type { Engine, EngineEvent } from "../../../contract/engine.ts";
import type { ArchState, DeviceState } from "../../../contract/state.ts";
import { stateFromMachine, type Machine } from "../../../spec/machine/machine.ts";
import { step } from "../../../spec/step/step.ts";
import { kernelMachine, withCode, withRegs } from "../../helpers/fixture.ts";

const DEVICE_ENGINES = ENGINES.filter((e) => e.capabilities.devices === true);
const le32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const mov = (value: number) => [0xb8, ...le32(value)]; // mov $value, %eax
const NOP = 0x90;

/** The kernel fixture (CPL 0, IDT gates to `hlt` stubs) with `code` at RIP and `devices`. */
function machine(code: readonly number[], devices?: Partial<DeviceState>, patch: Partial<Machine> = {}): Machine {
  const m = withCode(kernelMachine(), code);
  return { ...m, ...patch, devices: { ...m.devices, ...devices } };
}

function loaded(engine: (typeof DEVICE_ENGINES)[number], m: Machine): Engine {
  const e = createEngine(engine.name);
  e.load(stateFromMachine(m), "intel");
  return e;
}

function steps(e: Engine, n: number): EngineEvent[] {
  return Array.from({ length: n }, () => e.step());
}

/** The rules one spec step exercises. */
function rulesOf(m: Machine): Set<string> {
  const coverage = new Set<string>();
  step(m, { coverage });
  return coverage;
}

const counting = (period: number, countdown = period) => ({ timer: { period, vector: 0x20, countdown, waitingEoi: false } });

it("at least one engine implements the devices (spec)", () => {
  expect(DEVICE_ENGINES.map((e) => e.name)).toContain("spec");
});

describe.each(DEVICE_ENGINES.map((e) => [e.name, e] as const))("devices on %s", (_name, engine) => {
  it("DEV-CON-01: OUT to 0xE9 appends the low byte of AL/AX/EAX to the console, one byte a step; takeConsole hands them over once", () => {
    // mov $0x4241, %eax; out %al, $0xe9; out %ax, $0xe9 (66); out %eax, $0xe9
    const e = loaded(engine, machine([...mov(0x4241), 0xe6, 0xe9, 0x66, 0xe7, 0xe9, 0xe7, 0xe9]));
    const events = steps(e, 4);
    expect(events.map((x) => x.kind)).toEqual(["retired", "io", "io", "io"]);
    expect([...e.takeConsole!()]).toEqual([0x41, 0x41, 0x41]);
    expect([...e.takeConsole!()]).toEqual([]);
    // Through run(n) too: nothing is lost in a batch.
    const r = loaded(engine, machine([...mov(0x0a43), 0xe6, 0xe9, 0xe6, 0xe9, 0xf4]));
    expect(r.run(100).reason).toBe("hlt");
    expect([...r.takeConsole!()]).toEqual([0x43, 0x43]);
  });

  it("DEV-CON-02 / DEV-PORT: IN from 0xE9 reads 0xE9; ports that are no device register read all ones and ignore OUT (0xE8, 0xEA, 0xF5)", () => {
    // in $0xe9, %eax; mov %eax, %ebx; in $0xea, %al; out %eax, $0xe8; out %eax, $0xf5
    const e = loaded(engine, machine([0xe5, 0xe9, 0x89, 0xc3, 0xe4, 0xea, 0xe7, 0xe8, 0xe7, 0xf5], undefined, { gpr: withRegs(kernelMachine(), { rax: 0xffff_ffff_1234_5678n }).gpr }));
    steps(e, 5);
    const s = e.state();
    expect(s.gpr[3]).toBe(0xe9n); // EBX: the 32-bit read, zero-extended
    expect(s.gpr[0]).toBe(0xffn); // EAX was 0xE9; AL ← 0xFF
    expect(s.devices).toEqual(stateFromMachine(kernelMachine()).devices);
    expect([...e.takeConsole!()]).toEqual([]);
  });

  it("DEV-EXIT-01 / DEV-EXIT-02: OUT to 0xF4 sets the exit value (zero-extended from AL) and the machine takes no more steps", () => {
    const e = loaded(engine, machine([...mov(0x1ff), 0xe6, 0xf4, NOP], undefined));
    expect(steps(e, 2).map((x) => x.kind)).toEqual(["retired", "io"]);
    const s = e.state();
    expect(s.devices.exitValue).toBe(0xff);
    expect(e.step()).toEqual({ kind: "exited", rip: s.rip, value: 0xff });
    expect(e.run(10)).toEqual({ reason: "exit", steps: 0, exitValue: 0xff });
    expect(e.state().rip).toBe(s.rip);
    // The whole 32 bits of EAX with a 4-byte OUT.
    const w = loaded(engine, machine([...mov(0xdead_beef), 0xe7, 0xf4]));
    expect(w.run(10)).toEqual({ reason: "exit", steps: 2, exitValue: 0xdead_beef });
  });

  it("DEV-TMR-01 / DEV-TMR-02: PERIOD and VECTOR writes, and their reads truncated to the access", () => {
    // mov $0x12345, %eax; out %eax, $0xe0; mov $0x1231, %eax; out %eax, $0xe4; in $0xe0, %al; in $0xe4, %ax (66 E5)
    const e = loaded(engine, machine([...mov(0x12345), 0xe7, 0xe0, ...mov(0x1231), 0xe7, 0xe4, 0xe4, 0xe0, 0x66, 0xe5, 0xe4]));
    steps(e, 4);
    // PERIOD reloaded the countdown; the two instructions after it counted.
    expect(e.state().devices.timer).toEqual({ period: 0x12345, vector: 0x31, countdown: 0x12343, waitingEoi: false });
    e.step();
    expect(e.state().gpr[0]! & 0xffn).toBe(0x45n);
    e.step();
    expect(e.state().gpr[0]! & 0xffffn).toBe(0x31n);
  });

  it("DEV-TMR-04: each completed instruction counts down; the N-th after the PERIOD write ticks (pending IRQ, waiting for EOI); the writing OUT counts under the old settings", () => {
    // mov $3, %eax; out %eax, $0xe0; nop ×5 — IF = 0, so the tick stays pending.
    const e = loaded(engine, machine([...mov(3), 0xe7, 0xe0, NOP, NOP, NOP, NOP, NOP], counting(2)));
    const seen: [number | null, number, boolean][] = [];
    for (let i = 0; i < 7; i++) {
      e.step();
      const s = e.state();
      seen.push([s.cpu.pendingIrq, s.devices.timer.countdown, s.devices.timer.waitingEoi]);
    }
    expect(seen).toEqual([
      [null, 1, false], // mov: 2 → 1
      [0x20, 3, true], // out: counted first (1 → tick), then PERIOD ← 3 reloads the countdown; still waiting
      [0x20, 3, true], [0x20, 3, true], [0x20, 3, true], [0x20, 3, true], [0x20, 3, true], // no EOI: no counting
    ]);
  });

  it("DEV-TMR-03: EOI clears waiting_eoi and reloads the countdown; counting starts with the next instruction; the tick is delivered at the boundary once IF = 1", () => {
    // out %eax, $0xec (EOI); nop; nop; sti; nop — period 2
    const e = loaded(engine, machine([0xe7, 0xec, NOP, NOP, 0xfb, NOP], { timer: { period: 2, vector: 0x21, countdown: 0, waitingEoi: true } }));
    e.step();
    expect(e.state().devices.timer).toEqual({ period: 2, vector: 0x21, countdown: 2, waitingEoi: false });
    e.step();
    e.step(); // the second nop ticks
    expect(e.state().cpu.pendingIrq).toBe(0x21);
    e.step(); // sti (its shadow holds the interrupt over one boundary)
    expect(e.step().kind).toBe("retired"); // nop in the shadow
    expect(e.step()).toMatchObject({ kind: "delivered", vector: 0x21, source: "external" });
  });

  it("DEV-TMR-05: a faulting instruction, INT n and an event taken at a boundary do not count", () => {
    // ud2 (→ #UD delivered: not counted); the handler stub's hlt is counted.
    const e = loaded(engine, machine([0x0f, 0x0b], counting(5)));
    expect(e.step()).toMatchObject({ kind: "delivered", vector: 6 });
    expect(e.state().devices.timer.countdown).toBe(5);
    const i = loaded(engine, machine([0xcd, 0x40], counting(5))); // int $0x40
    expect(i.step()).toMatchObject({ kind: "delivered", vector: 0x40 });
    expect(i.state().devices.timer.countdown).toBe(5);
    expect(i.step().kind).toBe("halted"); // the stub's HLT counts
    expect(i.state().devices.timer.countdown).toBe(4);
    const b = loaded(engine, machine([NOP], counting(5), { rflags: 0x202n }));
    b.raise({ irq: 0x30 });
    expect(b.step()).toMatchObject({ kind: "delivered", vector: 0x30 });
    expect(b.state().devices.timer.countdown).toBe(5);
  });

  it("DEV-TMR-06: a halted CPU with IF = 1 jumps to the tick, which is delivered in that step; with IF = 0, or CR8 above the vector's class, it stays idle", () => {
    const e = loaded(engine, machine([0xf4], counting(1000), { rflags: 0x202n }));
    expect(e.step().kind).toBe("halted"); // HLT counts: 1000 → 999
    expect(e.run(0).reason).toBe("limit"); // not idle: the timer will wake it
    expect(e.step()).toMatchObject({ kind: "delivered", vector: 0x20, source: "external" });
    expect(e.state().devices.timer).toEqual({ period: 1000, vector: 0x20, countdown: 0, waitingEoi: true });
    for (const patch of [{ rflags: 0x2n }, { rflags: 0x202n, cr8: 2n }]) {
      const idle = loaded(engine, machine([0xf4], counting(1000), patch));
      idle.step();
      expect(idle.run(5)).toEqual({ reason: "hlt", steps: 0 });
      expect(idle.step()).toEqual({ kind: "halted", rip: 0x10001n });
      expect(idle.state().devices.timer.countdown).toBe(999);
    }
    // CR8 = 1 lets class 2 through.
    const cr8 = loaded(engine, machine([0xf4], counting(1000), { rflags: 0x202n, cr8: 1n }));
    cr8.step();
    expect(cr8.step()).toMatchObject({ kind: "delivered", vector: 0x20 });
  });

  it("a saved state carries the devices: reloading mid-countdown goes on exactly", () => {
    const code = [NOP, NOP, NOP, NOP, NOP, 0xf4];
    const whole = loaded(engine, machine(code, counting(4)));
    steps(whole, 5);
    const half = loaded(engine, machine(code, counting(4)));
    steps(half, 2);
    const saved: ArchState = half.state();
    const again = createEngine(engine.name);
    again.load(saved, "intel");
    steps(again, 3);
    expect(again.state().devices).toEqual(whole.state().devices);
    expect(again.state().cpu.pendingIrq).toBe(0x20);
  });
});

describe("device rules on spec's coverage", () => {
  it("names DEV-CON-01, DEV-EXIT-01, DEV-EXIT-02, DEV-TMR-01..04, DEV-TMR-06 and DEV-PORT in the steps that exercise them", () => {
    expect(rulesOf(machine([0xe6, 0xe9]))).toContain("DEV-CON-01");
    expect(rulesOf(machine([0xe4, 0xe9]))).toContain("DEV-CON-02");
    expect(rulesOf(machine([0xe6, 0x80]))).toContain("DEV-PORT");
    expect(rulesOf(machine([0xe6, 0xf4]))).toContain("DEV-EXIT-01");
    expect(rulesOf(machine([NOP], { exitValue: 0 }))).toContain("DEV-EXIT-02");
    expect(rulesOf(machine([0xe6, 0xe0]))).toContain("DEV-TMR-01");
    expect(rulesOf(machine([0xe6, 0xe4]))).toContain("DEV-TMR-02");
    expect(rulesOf(machine([0xe6, 0xec]))).toContain("DEV-TMR-03");
    const counted = rulesOf(machine([NOP], counting(3)));
    expect(counted).toContain("DEV-TMR-04");
    expect(counted).toContain("DEV-TMR-05"); // recorded with DEV-TMR-04
    const halted = { ...machine([], counting(3), { rflags: 0x202n }), cpu: { ...kernelMachine().cpu, halted: true } };
    expect(rulesOf(halted)).toContain("DEV-TMR-06");
  });
});
