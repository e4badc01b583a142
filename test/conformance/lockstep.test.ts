// spec/ and impl/ side by side on generated programs: after every step the events and the full
// states (registers, segments, control registers, MSRs, run-time state, and every memory byte either
// engine wrote) must be identical. A small, fast version of the conformance campaign.
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeProgram, isKernelSubsetTemplate, templateCount, type InstructionSpec } from "../../conformance/generate/program.ts";
import { lockstep } from "../../conformance/lockstep.ts";
import { engineEntry } from "../../engines/registry.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { stateFromMachine, type Machine } from "../../spec/machine/machine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { stateToJson } from "../../contract/state.ts";
import { kernelMachine, userMachine, withBytes } from "../helpers/fixture.ts";
import { envInteger, envReplayPath } from "../helpers/env.ts";

const RUNS = envInteger("RINGSPEC_LOCKSTEP_RUNS", 150, 1);
/** IN/OUT reach the device registers once both engines implement the devices (docs/devices.md). */
const DEVICES = engineEntry("spec")?.capabilities.devices === true && engineEntry("impl")?.capabilities.devices === true;
const SEED = envInteger("RINGSPEC_SEED", 20261122, -(2 ** 31), 2 ** 31 - 1);

const spec = fc.record({ template: fc.nat(), a: fc.nat(15), b: fc.nat(63), imm: fc.integer() });

interface Case {
  readonly kernel: boolean;
  readonly profile: ProfileName;
  readonly specs: readonly InstructionSpec[];
  readonly regs: readonly bigint[];
  readonly rflags: bigint;
  /** Hidden bases of the data segment registers and KERNEL_GS_BASE: 64-bit mode ignores most of
   *  them, but both engines must carry them exactly (e.g. through a NULL SS load). */
  readonly bases: readonly bigint[];
}

const caseArb = fc.record({
  kernel: fc.boolean(),
  profile: fc.constantFrom<ProfileName>("intel", "amd"),
  specs: fc.array(spec, { minLength: 1, maxLength: 24 }),
  regs: fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 16, maxLength: 16 }),
  rflags: fc.constantFrom(0x2n, 0x202n, 0x246n, 0x3202n, 0x40a93n),
  bases: fc.array(fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }), fc.bigInt({ min: 0xffff_8000_0000_0000n, max: (1n << 64n) - 1n })), { minLength: 6, maxLength: 6 }),
});

/** Whether each engine's first step of template `template` is not `unsupported` (a template is
 *  all instructions the engines model, or its first one shows it). */
function modelledBy(template: number, engines: readonly (() => SpecEngine | ImplEngine)[]): boolean {
  return engines.every((make) => {
    const all = Array.from({ length: templateCount(true) }, (_, i) => i);
    const m = initial({ kernel: true, profile: "intel", specs: [{ template, a: 1, b: 2, imm: 3 }], regs: kernelMachine().gpr, rflags: 2n, bases: [0n, 0n, 0n, 0n, 0n, 0n] }, all);
    const e = make();
    e.load(stateFromMachine(m), "intel");
    // A multi-instruction template (string instructions) sets registers first: run to its last.
    for (let i = 0; i < 8; i++) if (e.step().kind === "unsupported") return false;
    return true;
  });
}

/** The program placed at RIP, a data page it addresses, RSP kept on a mapped stack; the
 *  instructions drawn from `templates` (default: every template of the kind of program). */
function initial(c: Case, templates?: readonly number[]): Machine {
  const base = c.kernel ? kernelMachine() : userMachine();
  const data = c.kernel ? 0x30000n : 0x220000n;
  const code = encodeProgram(c.specs, { rip: base.rip, data, kernel: c.kernel, devices: DEVICES }, templates);
  let m = withBytes(base, base.rip, code);
  m = { ...m, gpr: c.regs.map((v, i) => (i === 4 ? m.gpr[4]! : v)), rflags: c.kernel ? c.rflags : c.rflags & ~0x3000n };
  const [ds, es, ss, fs, gs, kernelGs] = c.bases as [bigint, bigint, bigint, bigint, bigint, bigint];
  m = {
    ...m,
    ds: { ...m.ds, base: ds }, es: { ...m.es, base: es }, ss: { ...m.ss, base: ss },
    fs: { ...m.fs, base: fs }, gs: { ...m.gs, base: gs }, kernelGsBase: kernelGs,
  };
  // A recognisable data page for the memory operands.
  return withBytes(m, data, Array.from({ length: 256 }, (_, i) => (i * 37 + 11) & 0xff));
}

describe("lockstep: spec and impl agree after every step", () => {
  it(`on ${RUNS} generated programs (kernel and user, intel and amd; seed ${SEED})`, () => {
    const property = fc.property(caseArb, (c) => {
      const state = stateFromMachine(initial(c));
      const result = lockstep(new SpecEngine(), new ImplEngine(), state, c.profile, 200);
      if (result.divergence === null) return true;
      const d = result.divergence;
      // The shrunk case as a state file, to replay with `ringspec run --trace` on either engine.
      const file = join(tmpdir(), `ringspec-lockstep-${SEED}.json`);
      writeFileSync(file, JSON.stringify({ format: "ringspec-state/1", profile: c.profile, ...stateToJson(state) }, null, 1));
      throw new Error(
        `divergence at step ${d.step}: spec ${d.eventA} / impl ${d.eventB}\n` +
          d.differences.map((x) => `  ${x.field}: spec ${x.a}, impl ${x.b}`).join("\n") +
          `\nstate: ${file} (npx ringspec run ${file} --trace --max-steps ${d.step} --engine spec|impl)`,
      );
    });
    const out = fc.check(property, { seed: SEED, numRuns: RUNS, path: envReplayPath() });
    if (out.failed) {
      const message = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
      expect.fail(`${message}\nreplay: RINGSPEC_SEED=${out.seed} RINGSPEC_PATH=${out.counterexamplePath} npx vitest run test/conformance/lockstep.test.ts`);
    }
  }, Math.max(60_000, RUNS * 100)); // long runs (RINGSPEC_LOCKSTEP_RUNS) get time in proportion

  it("every generator template encodes instructions both engines model (none is `unsupported`), issue 11's kernel subset included", () => {
    // A template that drifted outside the modelled subset would end every program using it at its
    // first instruction, silently shrinking what lockstep compares.
    for (let template = 0; template < templateCount(true); template++) {
      expect(modelledBy(template, [() => new SpecEngine()]), `template ${template} on spec`).toBe(true);
      expect(modelledBy(template, [() => new ImplEngine()]), `template ${template} on impl`).toBe(true);
    }
    expect(Array.from({ length: templateCount(true) }, (_, i) => i).filter(isKernelSubsetTemplate).length).toBeGreaterThan(20);
  });
});

describe("the kernel-subset templates (SETcc, CMOVcc, CMPXCHG/XADD, strings with REP, ...) in lockstep", () => {
  it("programs drawn only from issue 11's subset run on spec without an `unsupported` step, deterministically, and impl agrees after every step", () => {
    const subset = Array.from({ length: templateCount(true) }, (_, i) => i).filter(isKernelSubsetTemplate);
    expect(subset.length).toBeGreaterThan(20);
    fc.assert(
      fc.property(caseArb, (c) => {
        const state = stateFromMachine(initial(c, subset));
        const runs = [new SpecEngine(), new SpecEngine()].map((e) => {
          e.load(state, c.profile);
          const kinds: string[] = [];
          for (let i = 0; i < 200 && e.run(0).reason === "limit"; i++) kinds.push(e.step().kind);
          return { kinds, state: e.state() };
        });
        expect(runs[0]!.kinds).not.toContain("unsupported");
        expect(runs[0]!.kinds).toEqual(runs[1]!.kinds);
        expect(runs[0]!.state.gpr).toEqual(runs[1]!.state.gpr);
        const result = lockstep(new SpecEngine(), new ImplEngine(), state, c.profile, 200);
        expect(result.divergence === null ? null : { ...result.divergence, differences: result.divergence.differences.map((d) => `${d.field}: spec ${d.a}, impl ${d.b}`) }).toBeNull();
      }),
      { seed: SEED, numRuns: 60 },
    );
  });
});

describe("the program generator and the devices", () => {
  it("IN/OUT reach the device registers (0xE9 here) only when asked; otherwise they go to port 0x80", () => {
    const has = (code: Uint8Array, a: number, b: number) => code.some((x, i) => x === a && code[i + 1] === b);
    let out = false;
    for (let template = 0; template < templateCount(false); template++) {
      const specs = [{ template, a: 1, b: 2, imm: 0xe9 }];
      const plain = encodeProgram(specs, { rip: 0x200000n, data: 0x220000n, kernel: false });
      const devices = encodeProgram(specs, { rip: 0x200000n, data: 0x220000n, kernel: false, devices: true });
      expect(has(plain, 0xe6, 0xe9) || has(plain, 0xe4, 0xe9)).toBe(false);
      if (has(devices, 0xe6, 0xe9)) {
        out = true;
        expect(has(plain, 0xe6, 0x80)).toBe(true);
      }
    }
    expect(out).toBe(true);
  });
});

describe("lockstep regressions", () => {
  it("DELIVER-17: the NULL SS loaded by an inter-privilege delivery has base 0 on both engines (impl kept the old base)", () => {
    // User code `ud2` with a non-zero SS base: #UD from CPL 3 switches to RSP0 and loads NULL SS.
    let m = withBytes(userMachine(), 0x200000n, [0x0f, 0x0b]);
    m = { ...m, ss: { ...m.ss, base: 0xffff_8000_0000_0000n } };
    for (const engine of [new SpecEngine(), new ImplEngine()]) {
      engine.load(stateFromMachine(m), "intel");
      expect(engine.step()).toMatchObject({ kind: "delivered", vector: 6 });
      expect(engine.state().ss).toMatchObject({ selector: 0, base: 0n, unusable: 1 });
    }
  });
});
