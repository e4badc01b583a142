// spec/ and impl/ side by side on generated programs: after every step the events and the full
// states (registers, segments, control registers, MSRs, run-time state, and every memory byte either
// engine wrote) must be identical. A small, fast version of the conformance campaign.
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeProgram, isKernelSubsetTemplate, templateCount } from "../../conformance/generate/program.ts";
import { PROGRAM_FAMILY, buildProgram, type ProgramCase } from "../../conformance/campaign/families.ts";
import { lockstep } from "../../conformance/lockstep.ts";
import { engineEntry } from "../../engines/registry.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import type { ArchState } from "../../contract/state.ts";
import { stateToJson } from "../../contract/state.ts";
import { ALL_MEMORY, type Engine, type PhysicalRange } from "../../contract/engine.ts";
import { compareStates } from "../../contract/compare.ts";
import { stateFromMachine } from "../../spec/machine/machine.ts";
import { kernelMachine, kernelState, userMachine, withBytes, withCode } from "../helpers/fixture.ts";
import { envInteger, envReplayPath } from "../helpers/env.ts";
import { expectSameBytes } from "../helpers/bytes.ts";

const RUNS = envInteger("RINGSPEC_LOCKSTEP_RUNS", 150, 1);
/** IN/OUT reach the device registers once both engines implement the devices (docs/devices.md). */
const DEVICES = engineEntry("spec")?.capabilities.devices === true && engineEntry("impl")?.capabilities.devices === true;
const SEED = envInteger("RINGSPEC_SEED", 20261122, -(2 ** 31), 2 ** 31 - 1);

/** The campaign's program family is the one generator of random programs: the same cases
 *  (conformance/campaign/families.ts), built with the device ports reachable here. */
const caseArb = PROGRAM_FAMILY.arbitrary;

/** Whether each engine's first step of template `template` is not `unsupported` (a template is
 *  all instructions the engines model, or its first one shows it). */
function modelledBy(template: number, engines: readonly (() => SpecEngine | ImplEngine)[]): boolean {
  return engines.every((make) => {
    const all = Array.from({ length: templateCount(true) }, (_, i) => i);
    const state = initial({ kernel: true, profile: "intel", specs: [{ template, a: 1, b: 2, imm: 3 }], regs: kernelState().gpr, rflags: 2n, bases: [0n, 0n, 0n, 0n, 0n, 0n] }, all);
    const e = make();
    e.load(state, "intel");
    // A multi-instruction template (string instructions) sets registers first: run to its last.
    for (let i = 0; i < 8; i++) if (e.step().kind === "unsupported") return false;
    return true;
  });
}

/** The program placed at RIP, a data page it addresses, RSP kept on a mapped stack; the
 *  instructions drawn from `templates` (default: every template of the kind of program). */
function initial(c: ProgramCase, templates?: readonly number[]): ArchState {
  return buildProgram(c, undefined, { devices: DEVICES, ...(templates === undefined ? {} : { templates }) }).state;
}

describe("lockstep: spec and impl agree after every step", () => {
  it(`on ${RUNS} generated programs (kernel and user, intel and amd; seed ${SEED})`, () => {
    const property = fc.property(caseArb, (c) => {
      const state = initial(c);
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
        const state = initial(c, subset);
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

describe("B hands out only the memory the lockstep compares (Engine.state's ranges)", () => {
  /** push rax; push rbx; mov [0x30000], eax (not written by anything else); nop; hlt. */
  const writer = () => stateFromMachine(withCode(kernelMachine(), [0x50, 0x53, 0x89, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0x90, 0xf4]));

  it("state(ranges) holds every page the ranges reach as state() has it, and the same registers", () => {
    for (const engine of [new SpecEngine(), new ImplEngine()] as Engine[]) {
      engine.load(writer(), "intel");
      for (let i = 0; i < 3; i++) engine.step();
      const ranges = engine.touched();
      expect(ranges.length).toBeGreaterThan(0);
      // peekState(ranges) where the engine has it (its pages are views), read first: before a
      // state() (spec: which hands its working copy's pages over) its pages are the working copy's
      // own (spec's MemoryDraft.peek, owned index). Then state() and state(ranges).
      const peeked = engine.peekState === undefined ? [] : [engine.peekState(ranges)];
      const full = engine.state();
      for (const part of [...peeked, engine.state(ranges)]) {
        expect(compareStates(full, part, { rule: "exact", memory: ranges }).differences).toEqual([]);
        for (const r of ranges)
          for (let page = Number(r.start >> 12n); page <= Number((r.end - 1n) >> 12n); page++) {
            const want = full.memory.get(page);
            // Byte arrays at memcmp speed (test/helpers/bytes.ts); a missing page by toEqual.
            if (want === undefined) expect(part.memory.get(page), `page ${page}`).toEqual(want);
            else expectSameBytes(part.memory.get(page), want, `page ${page}`);
          }
      }
    }
    expect(new ImplEngine().peekState).toBeDefined();
  });

  it("spec's peekState and touched() after every step leave its run as it is (events, final state)", () => {
    // Writes on several pages (stack, 0x30000, 0x31000, 0x32000), two of them to a page already
    // written (owned by the working copy): mov [0x30000], eax; push rax; mov [0x31000], ebx;
    // mov [0x30008], ebx; push rbx; mov [0x32000], eax; mov [0x31010], eax; nop; hlt.
    const code = [0x89, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0x50, 0x89, 0x1c, 0x25, 0x00, 0x10, 0x03, 0x00, 0x89, 0x1c, 0x25, 0x08, 0x00, 0x03, 0x00, 0x53,
      0x89, 0x04, 0x25, 0x00, 0x20, 0x03, 0x00, 0x89, 0x04, 0x25, 0x10, 0x10, 0x03, 0x00, 0x90, 0xf4];
    const start = stateFromMachine(withCode(kernelMachine(), code));
    // `peeking` is read with peekState and touched() after every step, `plain` only stepped, and
    // `copied` read with state() after every step (what the peeked view must equal).
    const peeking = new SpecEngine(), plain = new SpecEngine(), copied = new SpecEngine();
    for (const e of [peeking, plain, copied]) e.load(start, "intel");
    const pages = new Set<number>();
    const kinds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const event = peeking.step();
      const peeked = peeking.peekState(ALL_MEMORY);
      for (const r of peeking.touched()) for (let p = r.start >> 12n; p < r.end >> 12n; p++) pages.add(Number(p));
      kinds.push(event.kind);
      expect(event).toEqual(plain.step());
      expect(event).toEqual(copied.step());
      expect(compareStates(copied.state(), peeked, { rule: "exact", memory: "all" }).differences).toEqual([]);
    }
    expect(kinds.slice(0, 9)).toEqual([...Array<string>(8).fill("retired"), "halted"]);
    expect(pages.size).toBeGreaterThanOrEqual(4);
    expect(compareStates(plain.state(), peeking.state(), { rule: "exact", memory: "all" }).differences).toEqual([]);
    expect(peeking.touched()).toEqual(plain.touched());
  });

  it("a write only B makes, to a page A never writes, is a divergence at that step", () => {
    /** impl, with one more byte written at its third step (at 0x40000, a page the program does not touch). */
    class StrayWrite implements Engine {
      protected readonly inner = new ImplEngine();
      private steps = 0;
      private stray: PhysicalRange[] = [];
      load(state: ArchState, profile: "intel" | "amd"): void {
        this.inner.load(state, profile);
        this.profile = profile;
      }
      private profile: "intel" | "amd" = "intel";
      step() {
        const event = this.inner.step();
        if (++this.steps === 3) {
          const s = this.inner.state();
          const memory = new Map(s.memory);
          const page = new Uint8Array(4096);
          page[0x10] = 0x5a;
          memory.set(0x40, page);
          const written = this.inner.touched();
          this.inner.load({ ...s, memory }, this.profile);
          this.stray = [...written, { start: 0x40000n, end: 0x41000n }];
        }
        return event;
      }
      run(maxSteps: number) {
        return this.inner.run(maxSteps);
      }
      state(memory?: readonly PhysicalRange[]) {
        return this.inner.state(memory);
      }
      raise(): void {}
      touched(): readonly PhysicalRange[] {
        return [...this.stray, ...this.inner.touched()].sort((a, b) => (a.start < b.start ? -1 : 1));
      }
    }
    /** The same, handing out its pages as impl's views (Engine.peekState): what lockstep asks of impl. */
    class PeekingStrayWrite extends StrayWrite {
      peekState(memory: readonly PhysicalRange[]) {
        return this.inner.peekState(memory);
      }
    }
    for (const b of [new StrayWrite(), new PeekingStrayWrite()]) {
      const result = lockstep(new SpecEngine(), b, writer(), "intel", 10);
      expect(result.divergence?.step).toBe(3);
      expect(result.divergence?.differences.map((d) => `${d.field}: ${d.a} / ${d.b}`)).toEqual(["memory@0x40010: 00 / 5a"]);
    }
  });

  it("a write only A makes, to a page B never writes, is a divergence at that step (A's touched() is asked after every step)", () => {
    /** impl, without the third step's store (mov [0x30000], eax): that page as before the step,
     *  and not among the pages it says it wrote. */
    class DroppedWrite implements Engine {
      private readonly inner = new ImplEngine();
      private steps = 0;
      private kept: PhysicalRange[] = [];
      private profile: "intel" | "amd" = "intel";
      load(state: ArchState, profile: "intel" | "amd"): void {
        this.inner.load(state, profile);
        this.profile = profile;
      }
      step() {
        const before = this.steps === 2 ? this.inner.state() : undefined;
        const event = this.inner.step();
        if (++this.steps === 3) {
          const s = this.inner.state();
          const memory = new Map(s.memory);
          const was = before!.memory.get(0x30);
          if (was === undefined) memory.delete(0x30);
          else memory.set(0x30, was);
          this.kept = this.inner.touched().filter((r) => !(r.start <= 0x30000n && 0x30000n < r.end));
          this.inner.load({ ...s, memory }, this.profile);
        }
        return event;
      }
      run(maxSteps: number) {
        return this.inner.run(maxSteps);
      }
      state(memory?: readonly PhysicalRange[]) {
        return this.inner.state(memory);
      }
      peekState(memory: readonly PhysicalRange[]) {
        return this.inner.peekState(memory);
      }
      raise(): void {}
      touched(): readonly PhysicalRange[] {
        return [...this.kept, ...this.inner.touched()].sort((a, b) => (a.start < b.start ? -1 : 1));
      }
    }
    const start = writer();
    const result = lockstep(new SpecEngine(), new DroppedWrite(), { ...start, gpr: start.gpr.map((v, i) => (i === 0 ? 0x11223344n : v)) }, "intel", 10);
    expect(result.divergence?.step).toBe(3);
    expect(result.divergence?.differences.map((d) => d.field)).toEqual(["memory@0x30000"]);
  });
});
