// The devices of docs/devices.md: the pure model, and the outside implementation around both
// engines, on small hand-assembled guests (every byte commented).
import { describe, expect, it } from "vitest";
import { RESET_DEVICES, countInstruction, deviceRead, deviceWrite, tickCouldBeTaken, isCounting, PORT, type TimerState } from "../../kernel/devices/index.ts";
import { loadKernel, parseLoaderDescription } from "../../kernel/loader/index.ts";
import { runKernel } from "../../kernel/run.ts";
import { ExternalDevices } from "../../kernel/devices/external.ts";
import { createEngine, KERNEL_ENGINE_NAMES } from "../../kernel/engines.ts";
import type { ArchState } from "../../contract/state.ts";

const counting = (period: number, countdown: number): TimerState => ({ period, vector: 0x20, countdown, waitingEoi: false });

describe("the timer model", () => {
  it("counts down one completed instruction at a time and ticks when the countdown reaches 0", () => {
    let t = counting(3, 3);
    const ticks: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const r = countInstruction(t);
      ticks.push(r.ticked);
      t = r.timer;
    }
    expect(ticks).toEqual([false, false, true, false]); // the 4th does not count: waiting for EOI
    expect(t).toEqual({ period: 3, vector: 0x20, countdown: 0, waitingEoi: true });
  });

  it("EOI clears waiting_eoi and reloads the countdown; PERIOD reloads it without touching waiting_eoi", () => {
    const waiting: TimerState = { period: 5, vector: 0x20, countdown: 0, waitingEoi: true };
    expect(deviceWrite({ ...RESET_DEVICES, timer: waiting }, PORT.timerEoi, 0xdeadn).devices.timer).toEqual({ period: 5, vector: 0x20, countdown: 5, waitingEoi: false });
    expect(deviceWrite({ ...RESET_DEVICES, timer: waiting }, PORT.timerPeriod, 9n).devices.timer).toEqual({ period: 9, vector: 0x20, countdown: 9, waitingEoi: true });
    expect(isCounting({ ...waiting, period: 0, waitingEoi: false })).toBe(false);
  });

  it("VECTOR keeps the low 8 bits; the console takes the low byte; the exit port keeps 32 bits", () => {
    expect(deviceWrite(RESET_DEVICES, PORT.timerVector, 0x1234n).devices.timer.vector).toBe(0x34);
    expect(deviceWrite(RESET_DEVICES, PORT.debugcon, 0x4142n).consoleByte).toBe(0x42);
    expect(deviceWrite(RESET_DEVICES, PORT.debugExit, 0x1_0000_0007n).devices.exitValue).toBe(7);
    expect(deviceWrite(RESET_DEVICES, 0xe8, 1n).devices).toBe(RESET_DEVICES); // 0xE8 is no register
  });

  it("reads: the console reads back 0xE9, the timer its registers, EOI and exit nothing", () => {
    const d = { ...RESET_DEVICES, timer: counting(0x12345, 7) };
    expect(deviceRead(d, PORT.debugcon, 4)).toBe(0xe9n);
    expect(deviceRead(d, PORT.timerPeriod, 2)).toBe(0x2345n);
    expect(deviceRead(d, PORT.timerVector, 1)).toBe(0x20n);
    expect(deviceRead(d, PORT.timerEoi, 4)).toBeUndefined();
    expect(deviceRead(d, PORT.debugExit, 1)).toBeUndefined();
  });

  it("a halted CPU's tick can be taken only with IF = 1 and a TPR below the vector's class", () => {
    const t = counting(10, 10);
    expect(tickCouldBeTaken(t, 0x202n, 0n)).toBe(true);
    expect(tickCouldBeTaken(t, 0x002n, 0n)).toBe(false);
    expect(tickCouldBeTaken(t, 0x202n, 2n)).toBe(false); // vector 0x20: class 2, not above 2
    expect(tickCouldBeTaken(t, 0x202n, 1n)).toBe(true);
  });
});

/** A raw image at 0x100000 in the loader's boot state (CPL 0, IF = 0, identity-mapped). */
function guest(bytes: number[]): ArchState {
  return loadKernel(Uint8Array.from(bytes), parseLoaderDescription({ format: "ringspec-loader/1", image: { type: "raw", load_address: "0x100000" } })).state;
}

const le32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];

describe.each(KERNEL_ENGINE_NAMES)("the devices around %s", (engine) => {
  it("prints on 0xE9 and stops at the exit write, with its value", () => {
    const state = guest([
      0xb0, 0x48, //       mov $'H', %al
      0xe6, 0xe9, //       out %al, $0xe9
      0xb8, ...le32(0x4169), // mov $0x4169, %eax
      0xe7, 0xe9, //       out %eax, $0xe9     (a 4-byte OUT writes its low byte: 'i')
      0xb8, ...le32(7), // mov $7, %eax
      0xe7, 0xf4, //       out %eax, $0xf4     (exit 7)
      0xb0, 0x21, //       mov $'!', %al      (never runs)
      0xe6, 0xe9, //       out %al, $0xe9
    ]);
    const r = runKernel(state, { engine, profile: "intel", maxSteps: 100, timeoutMs: 10_000, consoleLimit: 100 });
    expect(r.stop).toBe("exit");
    expect(r.exitValue).toBe(7);
    expect(r.steps).toBe(6);
    expect(new TextDecoder().decode(r.console)).toBe("Hi");
  });

  it("caps the console", () => {
    const state = guest([0xb0, 0x78, 0xe6, 0xe9, 0xeb, 0xfc]); // 1: mov $'x', %al; out %al, $0xe9; jmp 1b
    const r = runKernel(state, { engine, profile: "intel", maxSteps: 1000, timeoutMs: 10_000, consoleLimit: 5 });
    expect(r.stop).toBe("console-limit");
    expect(new TextDecoder().decode(r.console)).toBe("xxxxx");
  });

  it("makes the tick pending at the boundary after the N-th instruction following the PERIOD write", () => {
    const state = guest([
      0xb8, ...le32(0x31), // mov $0x31, %eax
      0xe7, 0xe4, //          out %eax, $0xe4   (vector 0x31)
      0xb8, ...le32(3), //    mov $3, %eax
      0xe7, 0xe0, //          out %eax, $0xe0   (period 3: counted under the old settings, off)
      0x90, 0x90, 0x90, //    nop; nop; nop     (the third nop ticks; IF = 0 keeps it pending)
      0x90, 0x90, //          nop; nop          (no more ticks before an EOI)
      0xe7, 0xec, //          out %eax, $0xec   (EOI: counting again)
      0x90, 0x90, 0x90, //    nop × 3           (the third would tick again)
    ]);
    const e = new ExternalDevices(createEngine(engine));
    e.load(state, "intel");
    const pending: (number | null)[] = [];
    const waiting: boolean[] = [];
    for (let i = 0; i < 12; i++) {
      e.step();
      pending.push(e.state().cpu.pendingIrq);
      waiting.push(e.devices.timer.waitingEoi);
    }
    expect(pending).toEqual([null, null, null, null, null, null, 0x31, 0x31, 0x31, 0x31, 0x31, 0x31]);
    expect(waiting).toEqual([false, false, false, false, false, false, true, true, true, false, false, false]);
    expect(e.devices.timer.countdown).toBe(1);
  });

  it("a CPU halted with IF = 1 jumps to the tick; the handler's EOI and exit follow", () => {
    const code = [
      0x0f, 0x01, 0x1d, ...le32(0x300 - 7), // 0x100000 lidt idtr(%rip)
      0xb8, ...le32(0x20), //                  0x100007 mov $0x20, %eax
      0xe7, 0xe4, //                           0x10000c out %eax, $0xe4
      0xb8, ...le32(100), //                   0x10000e mov $100, %eax
      0xe7, 0xe0, //                           0x100013 out %eax, $0xe0
      0xfb, //                                 0x100015 sti
      0xf4, //                                 0x100016 hlt
      0xeb, 0xfe, //                           0x100017 jmp .
    ];
    const image = new Array<number>(0x500).fill(0);
    image.splice(0, code.length, ...code);
    // 0x100100: the handler: out %eax, $0xec (EOI); mov $5, %eax; out %eax, $0xf4; jmp .
    image.splice(0x100, 11, 0xe7, 0xec, 0xb8, ...le32(5), 0xe7, 0xf4, 0xeb, 0xfe);
    // 0x100200: the IDT; gate 0x20: offset 0x100100, CS 0x08, 64-bit interrupt gate, DPL 0.
    image.splice(0x200 + 0x20 * 16, 16, 0x00, 0x01, 0x08, 0x00, 0x00, 0x8e, 0x10, 0x00, 0, 0, 0, 0, 0, 0, 0, 0);
    // 0x100300: IDTR: limit 0x0fff, base 0x100200.
    image.splice(0x300, 10, 0xff, 0x0f, 0x00, 0x02, 0x10, 0, 0, 0, 0, 0);
    const e = new ExternalDevices(createEngine(engine));
    e.load(guest(image), "intel");
    const kinds: string[] = [];
    for (let i = 0; i < 12; i++) kinds.push(e.step().kind);
    // lidt mov out mov out sti hlt | tick delivered | out(EOI) mov out(exit) | exited (no step)
    expect(kinds).toEqual(["retired", "retired", "io", "retired", "io", "retired", "halted", "delivered", "io", "retired", "io", "exited"]);
    expect(e.run(10)).toEqual({ reason: "exit", steps: 0, exitValue: 5 });
    expect(e.state().devices.exitValue).toBe(5);
    expect(e.devices.exitValue).toBe(5);
    // EOI reloads 100; the mov and the exit OUT count (the OUT is counted before its write).
    expect(e.devices.timer).toEqual({ period: 100, vector: 0x20, countdown: 98, waitingEoi: false });
  });

  it("a CPU halted with IF = 0 does not jump to the tick: the run stops with hlt", () => {
    const state = guest([0xb8, ...le32(10), 0xe7, 0xe0, 0xf4]); // mov $10, %eax; out %eax, $0xe0; hlt
    const r = runKernel(state, { engine, profile: "intel", maxSteps: 100, timeoutMs: 10_000, consoleLimit: 100 });
    expect(r.stop).toBe("hlt");
    expect(r.steps).toBe(3);
    expect(r.state.cpu.pendingIrq).toBeNull();
  });
});
