// Checking a vector (conformance/vector-check.ts): the runner's stop against `expected.exit`, the
// final state against `expected` through the one comparison, driven by a small fake engine so that
// every outcome is exercised whatever the model implements today.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseVector, type LoadedVector } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import type { Engine, EngineCapabilities, EngineEvent, EngineStop, PhysicalRange, StopReason } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";
import { asAsync } from "../../contract/async.ts";
import { checkVector, checkVectorSync } from "../../conformance/vector-check.ts";
import { createEngine } from "../../engines/registry.ts";

const SYSCALL_BASIC = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url)), "utf8"),
) as Record<string, any>;

/** syscall-basic with its expected section replaced. */
function vectorExpecting(expected: Record<string, unknown>): LoadedVector {
  return parseVector({ ...SYSCALL_BASIC, expected });
}

const CAPABILITIES: EngineCapabilities = { name: "fake", profiles: ["intel", "amd"], singleStep: true, raise: false, touched: false, unobservable: [] };

/** An engine whose run stops at once with `reason` (7 steps), its state `change(loaded)`; it
 *  records what it was asked. */
class FakeEngine implements Engine {
  loads: ProfileName[] = [];
  runs: number[] = [];
  private loaded: ArchState | undefined;
  constructor(
    private readonly reason: StopReason,
    private readonly change: (s: ArchState) => ArchState = (s) => s,
    private readonly event?: EngineStop["event"],
  ) {}
  load(state: ArchState, profile: ProfileName): void {
    this.loaded = state;
    this.loads.push(profile);
  }
  step(): EngineEvent {
    throw new Error("not used");
  }
  run(maxSteps: number): EngineStop {
    this.runs.push(maxSteps);
    return { reason: this.reason, steps: Math.min(7, maxSteps), ...(this.event === undefined ? {} : { event: this.event }) };
  }
  state(): ArchState {
    return this.change(this.loaded!);
  }
  raise(): void {}
  touched(): readonly PhysicalRange[] {
    return [];
  }
}

// Generous: the deadline is checked between run(n) calls and before steps, and no test here but the
// one about the timeout may see it (a pause of a second on a busy machine would).
const OPTIONS = { timeoutMs: 60_000 };

describe("checkVector", () => {
  it("passes when the exit and every expected field match; uses the vector's profile and step limit", async () => {
    const v = vectorExpecting({
      exit: "hlt",
      regs: { rsp: "0x210000", rip: "0x200000" },
      sregs: { cs: { selector: "0x2b", dpl: 3, l: 1 }, gdt: { base: "0x8000" }, cr3: "0x1000" },
      msrs: { LSTAR: "0x11000", FS_BASE: "0x0" },
      memory: [{ gpa: "0x200000", bytes: SYSCALL_BASIC.initial.memory[7].bytes }],
    });
    const engine = new FakeEngine("hlt");
    const r = await checkVector(v, asAsync(engine, CAPABILITIES), OPTIONS);
    expect(r.mismatches).toEqual([]);
    expect(r.notCompared).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.steps).toBe(7);
    expect(engine.loads).toEqual(["intel"]);
    expect(engine.runs).toEqual([1000]);
  });

  it("--profile and --max-steps override the vector's", async () => {
    const engine = new FakeEngine("limit");
    const r = await checkVector(vectorExpecting({ exit: "limit" }), asAsync(engine, CAPABILITIES), { timeoutMs: 5, profile: "amd", maxSteps: 0 });
    expect(r.profile).toBe("amd");
    expect(r.passed).toBe(true);
    expect(engine.loads).toEqual(["amd"]);
    expect(engine.runs).toEqual([0]);
  });

  it("reports the exit and each differing field with expected and got values, as the format spells them", async () => {
    const v = vectorExpecting({
      exit: "hlt",
      regs: { rax: "0x1", rcx: "0x200002" },
      sregs: { ss: { selector: "0x10", dpl: 0 } },
      msrs: { KERNEL_GS_BASE: "0x5" },
    });
    const engine = new FakeEngine("limit", (s) => ({ ...s, gpr: s.gpr.map((x, i) => (i === 1 ? 0x200002n : x)) }));
    const r = checkVectorSync(v, engine, OPTIONS);
    expect(r.passed).toBe(false);
    expect(r.detail).toBeUndefined();
    expect(r.mismatches).toEqual([
      { field: "exit", expected: "hlt", got: "limit" },
      { field: "regs.rax", expected: "0x1", got: "0x0" },
      { field: "sregs.ss.selector", expected: "0x10", got: "0x23" },
      { field: "sregs.ss.dpl", expected: 0, got: 3 },
      { field: "msrs.KERNEL_GS_BASE", expected: "0x5", got: "0x0" },
    ]);
  });

  it("unsupported and memory-limit stops fail with their reason and no field diff", async () => {
    const unsupported = new FakeEngine("unsupported", undefined, { kind: "unsupported", rip: 5n, bytes: Uint8Array.of(0x0f, 0x0b), reason: "no semantics" });
    const r = await checkVector(vectorExpecting({ exit: "limit", regs: { rax: "0x99" } }), asAsync(unsupported, CAPABILITIES), OPTIONS);
    expect(r).toMatchObject({ passed: false, exit: "unsupported", detail: "no semantics (bytes 0f0b)", mismatches: [] });
    const memory = new FakeEngine("memory-limit", undefined, { kind: "memory-limit", rip: 5n, reason: "page budget exceeded" });
    expect(checkVectorSync(vectorExpecting({ exit: "hlt" }), memory, OPTIONS)).toMatchObject({ passed: false, exit: "memory-limit", detail: "page budget exceeded" });
  });

  it("a run that does not finish in time fails with exit timeout", async () => {
    const spinning = new FakeEngine("limit");
    const r = await checkVector(vectorExpecting({ exit: "hlt" }), asAsync(spinning, CAPABILITIES), { timeoutMs: 30, maxSteps: Number.MAX_SAFE_INTEGER });
    expect(r).toMatchObject({ passed: false, exit: "timeout", detail: "no stop within 0.03 s", mismatches: [] });
  });

  it("an engine that throws fails the vector with exit error instead of ending the check", async () => {
    const broken = new FakeEngine("hlt");
    broken.run = () => {
      throw new Error("boom\nsecond line");
    };
    const r = await checkVector(vectorExpecting({ exit: "hlt" }), asAsync(broken, CAPABILITIES), OPTIONS);
    expect(r).toMatchObject({ passed: false, exit: "error", detail: "engine threw: boom second line" });
  });

  it("fields the engine cannot observe are reported as not compared, not as passes", async () => {
    const v = vectorExpecting({ exit: "hlt", msrs: { CSTAR: "0x12345" }, regs: { rax: "0x0" } });
    const r = await checkVector(v, asAsync(new FakeEngine("hlt"), { ...CAPABILITIES, unobservable: ["msrs.CSTAR"] }), OPTIONS);
    expect(r).toMatchObject({ passed: true, mismatches: [], notCompared: ["msrs.CSTAR"] });
  });

  it("the spec engine through the runner: 0 steps stop at the limit with the state unchanged", () => {
    const r = checkVectorSync(vectorExpecting({ exit: "limit", regs: SYSCALL_BASIC.initial.regs, sregs: SYSCALL_BASIC.initial.sregs }), createEngine("spec"), {
      timeoutMs: 1000,
      maxSteps: 0,
    });
    expect(r).toMatchObject({ passed: true, exit: "limit", steps: 0 });
  });
});
