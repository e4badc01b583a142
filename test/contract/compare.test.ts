// The one state comparison (contract/compare.ts): field names and values as the vector format
// spells them, the null-selector rule in its two forms, memory runs, events, and fields an engine
// cannot observe reported as not compared.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDocument, parseVector } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent } from "../../contract/engine.ts";
import { compareEvents, compareExpected, compareStates, fieldMatches, STATE_FIELD_NAMES, unionRanges } from "../../contract/compare.ts";

const SYSCALL_BASIC = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url)), "utf8"),
) as Record<string, any>;
const state: ArchState = parseDocument(JSON.stringify(SYSCALL_BASIC)).state;
const expected = (e: Record<string, unknown>) => parseVector({ ...SYSCALL_BASIC, expected: { exit: "hlt", ...e } }).vector.expected;
const differences = (e: Record<string, unknown>, s: ArchState = state) => compareExpected(expected(e), s).differences;

function withPage(s: ArchState, page: number, bytes: readonly number[], at = 0): ArchState {
  const contents = new Uint8Array(s.memory.get(page) ?? new Uint8Array(4096));
  contents.set(bytes, at);
  return { ...s, memory: new Map([...s.memory, [page, contents]]) };
}

describe("field names", () => {
  it("are the vector format's paths, in the format's order", () => {
    expect(STATE_FIELD_NAMES.slice(0, 3)).toEqual(["regs.rax", "regs.rcx", "regs.rdx"]);
    expect(STATE_FIELD_NAMES).toContain("regs.rip");
    expect(STATE_FIELD_NAMES).toContain("sregs.cs.dpl");
    expect(STATE_FIELD_NAMES).toContain("sregs.ldt.unusable");
    expect(STATE_FIELD_NAMES).toContain("sregs.gdt.base");
    expect(STATE_FIELD_NAMES).toContain("sregs.efer");
    expect(STATE_FIELD_NAMES).toContain("msrs.FS_BASE");
    expect(STATE_FIELD_NAMES).toContain("msrs.SFMASK");
    expect(STATE_FIELD_NAMES).toContain("cpu.pending_debug_trap");
    expect(STATE_FIELD_NAMES.slice(-5)).toEqual(["devices.timer.period", "devices.timer.vector", "devices.timer.countdown", "devices.timer.waiting_eoi", "devices.exit_value"]);
    expect(new Set(STATE_FIELD_NAMES).size).toBe(STATE_FIELD_NAMES.length);
  });

  it("patterns match exactly or by the prefix before a trailing *", () => {
    expect(fieldMatches("sregs.cs.base", ["sregs.cs.base"])).toBe(true);
    expect(fieldMatches("sregs.cs.base", ["sregs.cs.b"])).toBe(false);
    expect(fieldMatches("sregs.cs.base", ["sregs.*"])).toBe(true);
    expect(fieldMatches("memory@0x1000", ["memory*"])).toBe(true);
    expect(fieldMatches("cpu.shadow", [])).toBe(false);
  });
});

describe("compareExpected: a vector's expected section", () => {
  it("a data segment register holding a null selector: only the selector is compared", () => {
    const ds = { ...state.ds, selector: 0, base: 0n, present: 0 };
    const s = { ...state, ds, fs: { ...state.fs, selector: 3 } };
    expect(differences({ sregs: { ds: { selector: "0x0", base: "0x1234", present: 1 }, fs: { selector: "0x3", type: 9 } } }, s)).toEqual([]);
    // Null expected, non-null got: the selector differs, and that is the one difference shown.
    expect(differences({ sregs: { ds: { selector: "0x0", base: "0x1234" } } }, { ...s, ds: { ...ds, selector: 0x18 } })).toEqual([
      { field: "sregs.ds.selector", a: "0x0", b: "0x18" },
    ]);
    // A non-null selector: the hidden part counts.
    expect(differences({ sregs: { ds: { selector: "0x18", base: "0x1234" } } }, { ...s, ds: { ...ds, selector: 0x18 } })).toEqual([
      { field: "sregs.ds.base", a: "0x1234", b: "0x0" },
    ]);
    // SS is a data segment register too: a NULL SS (as delivery loads it) compares the selector only.
    expect(differences({ sregs: { ss: { selector: "0x0", dpl: 0 } } }, { ...s, ss: { ...s.ss, selector: 0, dpl: 3 } })).toEqual([]);
    // CS, TR and LDTR are not data segment registers: compared in full even with a null selector.
    expect(differences({ sregs: { ldt: { selector: "0x0", dpl: 0 } } }, { ...s, ldtr: { ...s.ldtr, selector: 0, dpl: 3 } })).toEqual([
      { field: "sregs.ldt.dpl", a: 0, b: 3 },
    ]);
  });

  it("devices: the expected subset only; an expected null exit value is compared", () => {
    const s: ArchState = { ...state, devices: { timer: { period: 9, vector: 0x20, countdown: 4, waitingEoi: false }, exitValue: 3 } };
    expect(differences({ devices: { timer: { countdown: 4 } } }, s)).toEqual([]);
    expect(differences({ devices: { timer: { countdown: 5, waiting_eoi: true } } }, s)).toEqual([
      { field: "devices.timer.countdown", a: 5, b: 4 },
      { field: "devices.timer.waiting_eoi", a: true, b: false },
    ]);
    expect(differences({ devices: { exit_value: null } }, s)).toEqual([{ field: "devices.exit_value", a: null, b: 3 }]);
    expect(differences({ devices: {} }, s)).toEqual([]);
  });

  it("the rule is decided by the expected selector: a null selector got where a non-null one was expected hides nothing", () => {
    // The product's comparator used to skip the hidden part when the selector *got* was null, so
    // an engine that wrongly nulled DS also escaped every hidden-field check of DS.
    const s = { ...state, ds: { ...state.ds, selector: 0, base: 0n, present: 0 } };
    expect(differences({ sregs: { ds: { selector: "0x18", base: "0x1234", present: 1 } } }, s)).toEqual([
      { field: "sregs.ds.selector", a: "0x18", b: "0x0" },
      { field: "sregs.ds.base", a: "0x1234", b: "0x0" },
      { field: "sregs.ds.present", a: 1, b: 0 },
    ]);
    // An expected segment without a selector: its hidden fields are compared whatever the state holds.
    expect(differences({ sregs: { ds: { base: "0x1234" } } }, s)).toEqual([{ field: "sregs.ds.base", a: "0x1234", b: "0x0" }]);
  });

  it("FS_BASE and GS_BASE are the segment bases", () => {
    const s = { ...state, gs: { ...state.gs, base: 0xffff_8880_0000_0000n } };
    expect(differences({ msrs: { GS_BASE: "0xffff888000000000", FS_BASE: "0x1" } }, s)).toEqual([{ field: "msrs.FS_BASE", a: "0x1", b: "0x0" }]);
  });

  it("memory: byte by byte, one difference per run of differing bytes, named by its address", () => {
    const s = withPage(state, 0x1ff, [1, 2, 3, 4, 5, 6, 7, 8]);
    expect(differences({ memory: [{ gpa: "0x1ff000", bytes: "0102ff04eeee0708" }, { gpa: "0x5000000", bytes: "00" }] }, s)).toEqual([
      { field: "memory@0x1ff002", a: "ff", b: "03" },
      { field: "memory@0x1ff004", a: "eeee", b: "0506" },
    ]);
  });

  it("control registers, descriptor tables and RFLAGS", () => {
    expect(differences({ regs: { rflags: "0x2" }, sregs: { idt: { limit: "0xff" }, cr4: "0x620", efer: "0x501" } })).toEqual([
      { field: "regs.rflags", a: "0x2", b: "0x10e83" },
      { field: "sregs.idt.limit", a: "0xff", b: "0xfff" },
      { field: "sregs.efer", a: "0x501", b: "0xd01" },
    ]);
  });

  it("the SYSENTER MSRs, APIC_BASE and the debug registers are compared when expected", () => {
    expect(STATE_FIELD_NAMES).toEqual(expect.arrayContaining(["msrs.SYSENTER_CS", "msrs.SYSENTER_ESP", "msrs.SYSENTER_EIP", "msrs.APIC_BASE", "sregs.dr0", "sregs.dr6", "sregs.dr7"]));
    const got: ArchState = { ...state, sysenterCs: 0x10n, dr6: 0xffff4ff0n };
    expect(differences({ msrs: { SYSENTER_CS: "0x8", APIC_BASE: "0xfee00900" }, sregs: { dr6: "0xffff0ff0", dr7: "0x400" } }, got)).toEqual([
      { field: "sregs.dr6", a: "0xffff0ff0", b: "0xffff4ff0" },
      { field: "msrs.SYSENTER_CS", a: "0x8", b: "0x10" },
    ]);
    expect(compareStates(state, { ...state, sysenterEip: 1n, dr0: 2n }, { rule: "exact", memory: [] }).differences.map((d) => d.field)).toEqual(["sregs.dr0", "msrs.SYSENTER_EIP"]);
  });

  it("a partial segment gets no defaults: an absent `unusable` is not compared", () => {
    const e = expected({ sregs: { ss: { selector: "0x0" } } });
    // The parsed section keeps hex fields as their checked text (contract/schema.ts Hex64Text).
    expect(e.sregs?.ss).toEqual({ selector: "0x0" });
    expect(compareExpected(e, { ...state, ss: { ...state.ss, selector: 0, unusable: 1 } }).differences).toEqual([]);
  });

  it("fields an engine cannot observe are listed as not compared, never as differences or passes", () => {
    const e = expected({ regs: { rax: "0x5" }, sregs: { cs: { selector: "0x8", base: "0x7" } }, msrs: { CSTAR: "0x9" }, memory: [{ gpa: "0x0", bytes: "ff" }] });
    const c = compareExpected(e, state, { unobservable: ["sregs.cs.base", "msrs.*", "memory*"] });
    expect(c.notCompared).toEqual(["sregs.cs.base", "msrs.CSTAR", "memory"]);
    expect(c.differences.map((d) => d.field)).toEqual(["regs.rax", "sregs.cs.selector"]);
  });
});

describe("compareStates: two engines, or before and after a step", () => {
  it("exact: states equal but for one value (each value of the state but its memory in turn) give what the field table gives", () => {
    // compareStates skips its field table when every value but memory is the same; an unobservable
    // pattern that matches nothing forces the table, the reference here.
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      if (v instanceof Map) return;
      if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, Array.isArray(v) ? Number(k) : k]);
      else paths.push(path);
    };
    walk(state, []);
    expect(paths.length).toBeGreaterThan(100);
    const changed = (v: unknown): unknown => (typeof v === "bigint" ? v + 1n : typeof v === "number" ? v + 1 : typeof v === "boolean" ? !v : v === null ? 1 : `${String(v)}x`);
    const withChange = (v: unknown, path: (string | number)[]): unknown => {
      if (path.length === 0) return changed(v);
      const [head, ...rest] = path;
      if (Array.isArray(v)) return v.map((x, i) => (i === head ? withChange(x, rest) : x));
      return { ...(v as object), [head!]: withChange((v as Record<string, unknown>)[head!], rest) };
    };
    for (const path of paths) {
      const b = withChange(state, path) as ArchState;
      const table = compareStates(state, b, { rule: "exact", memory: "all", unobservable: ["no.such.field"] });
      expect(table.notCompared).toEqual([]);
      const quick = compareStates(state, b, { rule: "exact", memory: "all" });
      expect(quick.differences, path.join(".")).toEqual(table.differences);
      expect(quick.differences.length, path.join(".")).toBeGreaterThan(0);
    }
  });

  it("equal states: no differences", () => {
    expect(compareStates(state, state, { rule: "exact", memory: "all" })).toEqual({ differences: [], notCompared: [] });
  });

  it("every field, named and valued as in the format", () => {
    const b: ArchState = {
      ...state,
      gpr: state.gpr.map((v, i) => (i === 1 ? 0x200002n : v)),
      cs: { ...state.cs, selector: 0x8, dpl: 0 },
      gdtr: { ...state.gdtr, limit: 0x7f },
      lstar: 0x1234n,
      cpu: { ...state.cpu, pendingIrq: 32, shadow: "sti" },
    };
    expect(compareStates(state, b, { rule: "exact", memory: "all" }).differences).toEqual([
      { field: "regs.rcx", a: "0x0", b: "0x200002" },
      { field: "sregs.cs.selector", a: "0x2b", b: "0x8" },
      { field: "sregs.cs.dpl", a: 3, b: 0 },
      { field: "sregs.gdt.limit", a: "0x5f", b: "0x7f" },
      { field: "msrs.LSTAR", a: "0x11000", b: "0x1234" },
      { field: "cpu.pending_irq", a: null, b: 32 },
      { field: "cpu.shadow", a: "none", b: "sti" },
    ]);
  });

  it("exact compares a NULL data segment's hidden part; architectural compares its selector, and FS/GS bases as MSRs", () => {
    const a = { ...state, ss: { ...state.ss, selector: 0, dpl: 0 }, fs: { ...state.fs, selector: 0, base: 0x10n, type: 3 } };
    const b = { ...a, ss: { ...a.ss, dpl: 3, unusable: 1 }, fs: { ...a.fs, base: 0x20n, type: 1 } };
    expect(compareStates(a, b, { rule: "exact", memory: "all" }).differences.map((d) => d.field)).toEqual([
      "sregs.fs.base", "sregs.fs.type", "sregs.ss.dpl", "sregs.ss.unusable",
    ]);
    expect(compareStates(a, b, { rule: "architectural", memory: "all" }).differences).toEqual([{ field: "msrs.FS_BASE", a: "0x10", b: "0x20" }]);
    // Not null: the hidden part counts under both rules (and the base is not repeated as an MSR).
    const c = { ...b, ss: { ...b.ss, selector: 0x10, unusable: 0 } };
    const d = { ...c, ss: { ...c.ss, dpl: 0 } };
    expect(compareStates(c, d, { rule: "architectural", memory: "all" }).differences).toEqual([{ field: "sregs.ss.dpl", a: 3, b: 0 }]);
  });

  it("loaded and architectural leave out the attributes of a hidden part marked unusable (emulators keep none), not its selector or flag", () => {
    const a = { ...state, ldtr: { ...state.ldtr, selector: 0, unusable: 1, type: 2, limit: 0xffff } };
    const b = { ...a, ldtr: { ...a.ldtr, type: 0, limit: 0 } };
    expect(compareStates(a, b, { rule: "exact", memory: [] }).differences.map((d) => d.field)).toEqual(["sregs.ldt.limit", "sregs.ldt.type"]);
    expect(compareStates(a, b, { rule: "loaded", memory: [] }).differences).toEqual([]);
    expect(compareStates(a, b, { rule: "architectural", memory: [] }).differences).toEqual([]);
    expect(compareStates(a, { ...b, ldtr: { ...b.ldtr, unusable: 0 } }, { rule: "loaded", memory: [] }).differences).toEqual([{ field: "sregs.ldt.unusable", a: 1, b: 0 }]);
    // loaded keeps a usable NULL data segment's hidden part (load it as given: vector README).
    const usableNull = { ...state, ds: { ...state.ds, selector: 0, unusable: 0, dpl: 3 } };
    const changed = { ...usableNull, ds: { ...usableNull.ds, dpl: 0 } };
    expect(compareStates(usableNull, changed, { rule: "loaded", memory: [] }).differences).toEqual([{ field: "sregs.ds.dpl", a: 3, b: 0 }]);
    expect(compareStates(usableNull, changed, { rule: "architectural", memory: [] }).differences).toEqual([]);
    // An unusable FS keeps its base compared, as FS_BASE.
    const fs = { ...state, fs: { ...state.fs, selector: 0x18, unusable: 1, base: 1n } };
    expect(compareStates(fs, { ...fs, fs: { ...fs.fs, base: 2n } }, { rule: "loaded", memory: [] }).differences).toEqual([{ field: "msrs.FS_BASE", a: "0x1", b: "0x2" }]);
  });

  it("memory: runs of differing bytes within the ranges given, or in every page; words for traces", () => {
    const b = withPage(withPage(state, 0x400, [0xaa, 0xbb], 0xffe), 0x401, [0xcc], 0);
    expect(compareStates(state, b, { rule: "exact", memory: "all" }).differences).toEqual([{ field: "memory@0x400ffe", a: "000000", b: "aabbcc" }]);
    expect(compareStates(state, b, { rule: "exact", memory: [{ start: 0x401000n, end: 0x402000n }] }).differences).toEqual([
      { field: "memory@0x401000", a: "00", b: "cc" },
    ]);
    expect(compareStates(state, b, { rule: "exact", memory: [] }).differences).toEqual([]);
    // Words: the run widens to whole aligned words, across the page boundary.
    expect(compareStates(state, b, { rule: "exact", memory: "all", memoryUnit: "word" }).differences).toEqual([
      { field: "memory@0x400ff8", a: "00".repeat(16), b: "000000000000aabb" + "cc00000000000000" },
    ]);
  });

  it("unobservable fields and memory are not compared, and say so", () => {
    const b = withPage({ ...state, cstar: 1n, cpu: { ...state.cpu, halted: true } }, 0x400, [1]);
    const c = compareStates(state, b, { rule: "exact", memory: "all", unobservable: ["msrs.CSTAR", "cpu.*", "memory*"] });
    expect(c.differences).toEqual([]);
    expect(c.notCompared).toEqual(["msrs.CSTAR", "cpu.pending_irq", "cpu.pending_nmi", "cpu.nmi_blocked", "cpu.shadow", "cpu.halted", "cpu.shutdown", "cpu.pending_debug_trap", "memory"]);
  });
});

describe("compareEvents", () => {
  const retired: EngineEvent = { kind: "retired", rip: 0x10n, instruction: { bytes: Uint8Array.of(0x90), length: 1 } };
  it("equal events: nothing", () => {
    expect(compareEvents(retired, { ...retired, rules: ["RF-01"] })).toEqual([]);
  });
  it("kind, vector, error code, source, and whether the step was an instruction's", () => {
    const fault: EngineEvent = { kind: "delivered", rip: 0x10n, vector: 14, errorCode: 2, source: "exception", instruction: { bytes: Uint8Array.of(0x90), length: 1 } };
    const boundary: EngineEvent = { kind: "delivered", rip: 0x10n, vector: 14, errorCode: undefined, source: "external" };
    expect(compareEvents(fault, boundary)).toEqual([
      { field: "event.error_code", a: 2, b: null },
      { field: "event.source", a: "exception", b: "external" },
      { field: "event.instruction", a: true, b: false },
    ]);
    expect(compareEvents(retired, { kind: "halted", rip: 0x10n }).map((d) => d.field)).toEqual(["event.kind", "event.instruction"]);
  });
  it("an exited machine: the exit value counts", () => {
    const exited: EngineEvent = { kind: "exited", rip: 0x10n, value: 0 };
    expect(compareEvents(exited, { ...exited })).toEqual([]);
    expect(compareEvents(exited, { ...exited, value: 1 })).toEqual([{ field: "event.value", a: "0x0", b: "0x1" }]);
  });
});

describe("unionRanges", () => {
  it("sorts and merges overlapping and adjacent ranges", () => {
    expect(unionRanges([{ start: 0x3000n, end: 0x4000n }, { start: 0x0n, end: 0x1000n }], [{ start: 0x1000n, end: 0x2000n }, { start: 0x3800n, end: 0x5000n }])).toEqual([
      { start: 0x0n, end: 0x2000n },
      { start: 0x3000n, end: 0x5000n },
    ]);
  });
});

describe("expected values are compared by value, not by their text", () => {
  it("leading zeros and upper-case digits in expected hex fields match the state's values", () => {
    const e = expected({ regs: { rax: "0x00000000000000AB" }, sregs: { ss: { selector: "0x0018", limit: "0x000FFFFF" } }, msrs: { STAR: "0x0" } });
    const got = compareExpected(e, { ...state, gpr: state.gpr.map((v, i) => (i === 0 ? 0xabn : v)), ss: { ...state.ss, selector: 0x18, limit: 0xfffff }, star: 0n });
    expect(got.differences).toEqual([]);
    const wrong = compareExpected(e, { ...state, gpr: state.gpr.map((v, i) => (i === 0 ? 0xacn : v)), ss: { ...state.ss, selector: 0x18, limit: 0xfffff }, star: 0n });
    expect(wrong.differences).toEqual([{ field: "regs.rax", a: "0xab", b: "0xac" }]);
  });
});
