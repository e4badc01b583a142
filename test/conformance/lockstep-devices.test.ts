// The devices of docs/devices.md in lockstep: spec (its own devices) against impl — with its own
// devices once it has them, with kernel/devices' outside model around it until then (two
// independent implementations of the page either way). Every step's event, the whole state with
// its `devices` block, and the console bytes must be equal.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { DEVICE_OPERATION_COUNT, deviceProgramState, type DeviceProgram } from "../../conformance/generate/program-devices.ts";
import { lockstep } from "../../conformance/lockstep.ts";
import { createEngine, hasOwnDevices, type KernelEngine } from "../../kernel/engines.ts";
import { stateToJson } from "../../contract/state.ts";
import { envInteger, envReplayPath } from "../helpers/env.ts";

const RUNS = envInteger("RINGSPEC_LOCKSTEP_RUNS", 25, 1);
const SEED = envInteger("RINGSPEC_SEED", 20261123, -(2 ** 31), 2 ** 31 - 1);
/** IN from a device register only where both engines answer it themselves. */
const READS = hasOwnDevices("spec") && hasOwnDevices("impl");

const programArb: fc.Arbitrary<DeviceProgram> = fc.record({
  startPeriod: fc.nat(8),
  startIf: fc.boolean(),
  ops: fc.array(fc.record({ op: fc.nat(DEVICE_OPERATION_COUNT - 1), value: fc.nat(255) }), { minLength: 1, maxLength: 40 }),
  handlerEoi: fc.boolean(),
  exitValue: fc.nat(0xffff),
});

/** Engines that hand their console over after each step, so lockstep can compare the bytes. */
function consoleChecked(a: KernelEngine, b: KernelEngine): { a: KernelEngine; b: KernelEngine; mismatch: () => string | undefined } {
  let mismatch: string | undefined;
  const wrap = (e: KernelEngine, other: () => Uint8Array | undefined, mine: { last: Uint8Array | undefined }): KernelEngine =>
    new Proxy(e, {
      get(target, key, receiver) {
        if (key !== "step") return Reflect.get(target, key, receiver);
        return () => {
          const event = target.step();
          mine.last = target.takeConsole();
          const theirs = other();
          if (theirs !== undefined && mismatch === undefined && theirs.join() !== mine.last.join()) mismatch = `console: ${mine.last.join()} / ${theirs.join()}`;
          return event;
        };
      },
    });
  const sideA = { last: undefined as Uint8Array | undefined };
  const sideB = { last: undefined as Uint8Array | undefined };
  // A steps first (the runner), then B (lockstep): B compares with what A just wrote.
  return { a: wrap(a, () => undefined, sideA), b: wrap(b, () => sideA.last, sideB), mismatch: () => mismatch };
}

describe("lockstep on device programs (docs/devices.md)", () => {
  it(`spec and impl${hasOwnDevices("impl") ? "" : " (with kernel/devices around it)"} agree at every step on ${RUNS} programs (seed ${SEED})`, () => {
    let exits = 0;
    const property = fc.property(programArb, (program) => {
      const state = deviceProgramState(program, { reads: READS });
      const engines = consoleChecked(createEngine("spec"), createEngine("impl"));
      const result = lockstep(engines.a, engines.b, state, "intel", 600);
      if (result.divergence !== null || engines.mismatch() !== undefined) {
        const d = result.divergence;
        throw new Error(
          (d === null ? "" : `divergence at step ${d.step}: spec ${d.eventA} / impl ${d.eventB}\n` + d.differences.map((x) => `  ${x.field}: spec ${x.a}, impl ${x.b}`).join("\n")) +
            (engines.mismatch() ?? "") + `\nstate: ${JSON.stringify({ format: "ringspec-state/1", ...stateToJson(state) }).length} bytes`,
        );
      }
      if (result.stop.reason === "exit") exits++;
      return true;
    });
    const out = fc.check(property, { seed: SEED, numRuns: RUNS, path: envReplayPath() });
    if (out.failed) {
      const message = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
      expect.fail(`${message}\nreplay: RINGSPEC_SEED=${out.seed} RINGSPEC_PATH=${out.counterexamplePath} npx vitest run test/conformance/lockstep-devices.test.ts`);
    }
    // The family reaches its ends: most programs exit through the port (the rest end idle in `hlt`).
    expect(exits).toBeGreaterThan(RUNS / 3);
  }, 120_000);

  it("a program that programs the timer, takes ticks in a halted CPU and exits", () => {
    // period 3; sti; hlt (jump to the tick); nops; exit 7
    const program: DeviceProgram = { startPeriod: 0, startIf: false, ops: [{ op: 0, value: 3 }, { op: 9, value: 0 }, { op: 12, value: 5 }, { op: 9, value: 0 }], handlerEoi: true, exitValue: 7 };
    const state = deviceProgramState(program, { reads: READS });
    const result = lockstep(createEngine("spec"), createEngine("impl"), state, "intel", 500);
    expect(result.divergence).toBeNull();
    expect(result.stop).toMatchObject({ reason: "exit", exitValue: 7 });
  });
});
