// The engine-agnostic vector runner and comparator (conformance/vector-check.ts), driven by small
// fake engines so that every outcome is exercised whatever the model implements today.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDocument, parseVector, type LoadedVector } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import type { Engine, EngineEvent, EngineStop, PhysicalRange } from "../../contract/engine.ts";
import { checkVector, compareExpected, fromEngine, specEngine, type EngineResult, type VectorEngine } from "../../conformance/vector-check.ts";

const SYSCALL_BASIC = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url)), "utf8"),
) as Record<string, any>;

/** syscall-basic with its expected section replaced. */
function vectorExpecting(expected: Record<string, unknown>): LoadedVector {
  return parseVector({ ...SYSCALL_BASIC, expected });
}

/** An engine that returns `change(state)` with the given exit, recording its arguments. */
function fakeEngine(exit: EngineResult["exit"], change: (s: ArchState) => ArchState = (s) => s, detail?: string) {
  const calls: { profile: string; maxSteps: number; timeoutMs: number }[] = [];
  const engine: VectorEngine = (state, profile, maxSteps, timeoutMs) => {
    calls.push({ profile, maxSteps, timeoutMs });
    return { state: change(state), exit, steps: 7, ...(detail === undefined ? {} : { detail }) };
  };
  return { engine, calls };
}

const OPTIONS = { timeoutMs: 1000 };

describe("checkVector", () => {
  it("passes when the exit and every expected field match; uses the vector's profile and step limit", () => {
    const v = vectorExpecting({
      exit: "limit",
      regs: { rsp: "0x210000", rip: "0x200000" },
      sregs: { cs: { selector: "0x2b", dpl: 3, l: 1 }, gdt: { base: "0x8000" }, cr3: "0x1000" },
      msrs: { LSTAR: "0x11000", FS_BASE: "0x0" },
      memory: [{ gpa: "0x200000", bytes: SYSCALL_BASIC.initial.memory[7].bytes }],
    });
    const { engine, calls } = fakeEngine("limit");
    const r = checkVector(v, engine, OPTIONS);
    expect(r.mismatches).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.steps).toBe(7);
    expect(calls).toEqual([{ profile: "intel", maxSteps: 1000, timeoutMs: 1000 }]);
  });

  it("--profile and --max-steps override the vector's", () => {
    const { engine, calls } = fakeEngine("limit");
    const r = checkVector(vectorExpecting({ exit: "limit" }), engine, { timeoutMs: 5, profile: "amd", maxSteps: 0 });
    expect(r.profile).toBe("amd");
    expect(calls).toEqual([{ profile: "amd", maxSteps: 0, timeoutMs: 5 }]);
  });

  it("reports the exit and each differing field with expected and got values", () => {
    const v = vectorExpecting({
      exit: "hlt",
      regs: { rax: "0x1", rcx: "0x200002" },
      sregs: { ss: { selector: "0x10", dpl: 0 } },
      msrs: { KERNEL_GS_BASE: "0x5" },
    });
    const { engine } = fakeEngine("limit", (s) => ({ ...s, gpr: s.gpr.map((x, i) => (i === 1 ? 0x200002n : x)) }));
    const r = checkVector(v, engine, OPTIONS);
    expect(r.passed).toBe(false);
    expect(r.detail).toBeUndefined();
    expect(r.mismatches).toEqual([
      { field: "exit", expected: "hlt", got: "limit" },
      { field: "regs.rax", expected: "0x1", got: "0x0" },
      { field: "sregs.ss.selector", expected: "0x10", got: "0x23" },
      { field: "sregs.ss.dpl", expected: "0", got: "3" },
      { field: "msrs.KERNEL_GS_BASE", expected: "0x5", got: "0x0" },
    ]);
  });

  it.each(["unsupported", "fault", "timeout"] as const)("a %s stop fails with its reason and no field diff", (exit) => {
    const { engine } = fakeEngine(exit, undefined, `why: ${exit}`);
    const r = checkVector(vectorExpecting({ exit: "limit", regs: { rax: "0x99" } }), engine, OPTIONS);
    expect(r.passed).toBe(false);
    expect(r.exit).toBe(exit);
    expect(r.detail).toBe(`why: ${exit}`);
    expect(r.mismatches).toEqual([]);
  });

  it("an engine that throws fails the vector with exit error instead of ending the check", () => {
    const engine: VectorEngine = () => {
      throw new Error("boom\nsecond line");
    };
    const r = checkVector(vectorExpecting({ exit: "hlt" }), engine, OPTIONS);
    expect(r).toMatchObject({ passed: false, exit: "error", detail: "engine threw: boom second line" });
  });
});

describe("compareExpected", () => {
  const state = parseDocument(JSON.stringify(SYSCALL_BASIC)).state;
  const expected = (e: Record<string, unknown>) => vectorExpecting({ exit: "hlt", ...e }).vector.expected;

  it("a data segment register holding a null selector: only the selector is compared", () => {
    const ds = { ...state.ds, selector: 0, base: 0n, present: 0 };
    const s = { ...state, ds, fs: { ...state.fs, selector: 3 } };
    expect(compareExpected(expected({ sregs: { ds: { selector: "0x0", base: "0x1234", present: 1 }, fs: { selector: "0x3", type: 9 } } }), s)).toEqual([]);
    // Null expected, non-null got: the selector differs, and that is the one difference shown.
    expect(compareExpected(expected({ sregs: { ds: { selector: "0x0", base: "0x1234" } } }), { ...s, ds: { ...ds, selector: 0x18 } })).toEqual([
      { field: "sregs.ds.selector", expected: "0x0", got: "0x18" },
    ]);
    // A non-null selector: the hidden part counts.
    expect(compareExpected(expected({ sregs: { ds: { selector: "0x18", base: "0x1234" } } }), { ...s, ds: { ...ds, selector: 0x18 } })).toEqual([
      { field: "sregs.ds.base", expected: "0x1234", got: "0x0" },
    ]);
    // SS is a data segment register too: a NULL SS (as delivery loads it) compares the selector only.
    expect(compareExpected(expected({ sregs: { ss: { selector: "0x0", dpl: 0 } } }), { ...s, ss: { ...s.ss, selector: 0, dpl: 3 } })).toEqual([]);
    // CS, TR and LDTR are not data segment registers: compared in full even with a null selector.
    expect(compareExpected(expected({ sregs: { ldt: { selector: "0x0", dpl: 0 } } }), { ...s, ldtr: { ...s.ldtr, selector: 0, dpl: 3 } })).toEqual([
      { field: "sregs.ldt.dpl", expected: "0", got: "3" },
    ]);
  });

  it("FS_BASE and GS_BASE are the segment bases", () => {
    const s = { ...state, gs: { ...state.gs, base: 0xffff_8880_0000_0000n } };
    expect(compareExpected(expected({ msrs: { GS_BASE: "0xffff888000000000", FS_BASE: "0x1" } }), s)).toEqual([
      { field: "msrs.FS_BASE", expected: "0x1", got: "0x0" },
    ]);
  });

  it("memory: byte by byte, one mismatch per run of differing bytes", () => {
    const page = new Uint8Array(4096);
    page.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const s = { ...state, memory: new Map([...state.memory, [0x1ff, page]]) };
    expect(compareExpected(expected({ memory: [{ gpa: "0x1ff000", bytes: "0102ff04eeee0708" }, { gpa: "0x5000000", bytes: "00" }] }), s)).toEqual([
      { field: "memory[0]@0x1ff002", expected: "ff", got: "03" },
      { field: "memory[0]@0x1ff004", expected: "eeee", got: "0506" },
    ]);
  });

  it("control registers, descriptor tables and RFLAGS", () => {
    expect(compareExpected(expected({ regs: { rflags: "0x2" }, sregs: { idt: { limit: "0xff" }, cr4: "0x620", efer: "0x501" } }), state)).toEqual([
      { field: "regs.rflags", expected: "0x2", got: "0x10e83" },
      { field: "sregs.idt.limit", expected: "0xff", got: "0xfff" },
      { field: "sregs.efer", expected: "0x501", got: "0xd01" },
    ]);
  });
});

describe("specEngine", () => {
  it("runs the reference model: 0 steps stop at the limit with the state unchanged", () => {
    const doc = parseDocument(JSON.stringify(SYSCALL_BASIC));
    const r = specEngine()(doc.state, "intel", 0, 1000);
    expect(r.exit).toBe("limit");
    expect(r.steps).toBe(0);
    expect(r.state.rip).toBe(doc.state.rip);
    expect(compareExpected(vectorExpecting({ exit: "limit", regs: SYSCALL_BASIC.initial.regs }).vector.expected, r.state)).toEqual([]);
  });

  it("a CPU in shutdown stops at once with exit shutdown", () => {
    const doc = parseDocument(JSON.stringify(SYSCALL_BASIC));
    const r = specEngine()({ ...doc.state, cpu: { ...doc.state.cpu, shutdown: true } }, "intel", 100, 1000);
    expect(r.exit).toBe("shutdown");
  });
});

describe("fromEngine: any Engine (contract/engine.ts) as a VectorEngine", () => {
  /** Counts steps; halts after `haltAfter` steps (never when undefined), or reports unsupported bytes. */
  class CountingEngine implements Engine {
    steps = 0;
    runs: number[] = [];
    private loaded: ArchState | undefined;
    constructor(private readonly behaviour: { haltAfter?: number; unsupportedAfter?: number; memoryLimitAfter?: number }) {}
    load(state: ArchState): void {
      this.loaded = state;
    }
    step(): EngineEvent {
      this.steps++;
      return { kind: "retired", rip: 0n };
    }
    run(maxSteps: number): EngineStop {
      this.runs.push(maxSteps);
      const { haltAfter, unsupportedAfter, memoryLimitAfter } = this.behaviour;
      let n = 0;
      for (; ; n++) {
        if (haltAfter !== undefined && this.steps >= haltAfter) return { reason: "hlt", steps: n };
        if (unsupportedAfter !== undefined && this.steps >= unsupportedAfter)
          return { reason: "unsupported", steps: n, event: { kind: "unsupported", rip: 5n, bytes: Uint8Array.of(0x0f, 0x0b), reason: "no semantics" } };
        if (memoryLimitAfter !== undefined && this.steps >= memoryLimitAfter)
          return { reason: "memory-limit", steps: n, event: { kind: "memory-limit", rip: 5n, reason: "page budget exceeded" } };
        if (n >= maxSteps) return { reason: "limit", steps: n };
        this.step();
      }
    }
    state(): ArchState {
      return { ...this.loaded!, gpr: this.loaded!.gpr.map((v, i) => (i === 0 ? BigInt(this.steps) : v)) };
    }
    raise(): void {}
    touched(): readonly PhysicalRange[] {
      return [];
    }
  }
  const state = parseDocument(JSON.stringify(SYSCALL_BASIC)).state;

  it("runs in chunks until the step limit, and maps hlt", () => {
    const e = new CountingEngine({});
    const r = fromEngine(() => e)(state, "intel", 150_000, 60_000);
    expect(r).toMatchObject({ exit: "limit", steps: 150_000 });
    expect(e.runs).toEqual([65536, 65536, 150_000 - 131072]);
    expect(r.state.gpr[0]).toBe(150_000n);
    expect(fromEngine(() => new CountingEngine({ haltAfter: 70_000 }))(state, "intel", 1e6, 60_000)).toMatchObject({ exit: "hlt", steps: 70_000 });
    expect(fromEngine(() => new CountingEngine({}))(state, "intel", 0, 60_000)).toMatchObject({ exit: "limit", steps: 0 });
  });

  it("stops at the timeout between chunks", () => {
    const started = Date.now();
    const r = fromEngine(() => new CountingEngine({}))(state, "intel", Number.MAX_SAFE_INTEGER, 50);
    expect(r.exit).toBe("timeout");
    expect(r.detail).toBe("no stop within 0.05 s");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("unsupported and memory-limit stops carry their reason and fail the vector", () => {
    expect(fromEngine(() => new CountingEngine({ unsupportedAfter: 3 }))(state, "intel", 100, 1000)).toMatchObject({
      exit: "unsupported", steps: 3, detail: "no semantics (bytes 0f0b)",
    });
    const r = checkVector(vectorExpecting({ exit: "hlt" }), fromEngine(() => new CountingEngine({ memoryLimitAfter: 1 })), OPTIONS);
    expect(r).toMatchObject({ passed: false, exit: "memory-limit", detail: "page budget exceeded" });
  });
});

describe("expected sections", () => {
  it("a partial segment gets no defaults: an absent `unusable` is not compared", () => {
    const expected = vectorExpecting({ exit: "hlt", sregs: { ss: { selector: "0x0" } } }).vector.expected;
    expect(expected.sregs?.ss).toEqual({ selector: 0n });
    const state = parseDocument(JSON.stringify(SYSCALL_BASIC)).state;
    expect(compareExpected(expected, { ...state, ss: { ...state.ss, selector: 0, unusable: 1 } })).toEqual([]);
  });
});
