// The file formats: every project vector loads, states round-trip through JSON exactly, bad files
// get one-line messages naming the JSON path, and the committed JSON Schema is up to date.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FormatError, parseDocument } from "../../contract/load.ts";
import { RESET_DEVICES, stateToJson, type ArchState } from "../../contract/state.ts";
import { bytesToHex } from "../../contract/hex.ts";
import { jsonSchemaText } from "../../contract/json-schema.ts";

const VECTORS = fileURLToPath(new URL("../../conformance/vectors/", import.meta.url));
const vectorFiles = readdirSync(VECTORS).filter((n) => n.endsWith(".json")).sort();
const SYSCALL_BASIC = readFileSync(VECTORS + "syscall-basic.json", "utf8");

/** Memory as sorted [page, hex] pairs without all-zero pages (they read as zero either way and
 *  are not written out); hex strings keep the deep comparison fast. */
function normalised(s: ArchState) {
  const pages = [...s.memory].filter(([, page]) => page.some((b) => b !== 0)).sort(([a], [b]) => a - b);
  return { ...s, memory: pages.map(([n, page]) => [n, bytesToHex(page)]) };
}

function stateFile(s: ArchState, profile?: string): string {
  return JSON.stringify({ format: "ringspec-state/1", ...(profile === undefined ? {} : { profile }), ...stateToJson(s) });
}

/** The syscall-basic vector with `edit` applied to its parsed JSON. */
function editedVector(edit: (v: Record<string, any>) => void): string {
  const v = JSON.parse(SYSCALL_BASIC) as Record<string, any>;
  edit(v);
  return JSON.stringify(v);
}

function errorOf(text: string): string {
  try {
    parseDocument(text);
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    const message = (e as Error).message;
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("expected a FormatError");
}

describe("project vectors", () => {
  it("there are vectors to load", () => {
    expect(vectorFiles.length).toBeGreaterThanOrEqual(70);
  });

  it.each(vectorFiles)("%s loads, is named after its file and round-trips through a state file", (name) => {
    const doc = parseDocument(readFileSync(VECTORS + name, "utf8"));
    expect(doc.kind).toBe("vector");
    if (doc.kind !== "vector") return;
    expect(doc.vector.name + ".json").toBe(name);
    expect(doc.vector.limits.max_steps).toBeGreaterThan(0);
    const again = parseDocument(stateFile(doc.state, doc.profile));
    expect(again.kind).toBe("state");
    expect(again.profile).toBe(doc.profile);
    expect(normalised(again.state)).toEqual(normalised(doc.state));
  });
});

describe("state round trip", () => {
  const base = parseDocument(SYSCALL_BASIC).state;

  it("keeps every field of the cpu block", () => {
    const state: ArchState = {
      ...base,
      cpu: { pendingIrq: 0x31, pendingNmi: true, nmiBlocked: true, shadow: "movss", halted: true, shutdown: false, pendingDebugTrap: true },
    };
    const json = stateToJson(state);
    expect(json.cpu).toEqual({
      pending_irq: 0x31, pending_nmi: true, nmi_blocked: true, shadow: "movss", halted: true, shutdown: false, pending_debug_trap: true,
    });
    const again = parseDocument(stateFile(state));
    expect(normalised(again.state)).toEqual(normalised(state));
    expect(again.profile).toBeUndefined();
  });

  it("keeps 64-bit values, hidden segment parts and memory at high physical addresses", () => {
    const page = new Uint8Array(4096);
    page[0] = 0xab;
    page[4095] = 0xcd;
    const state: ArchState = {
      ...base,
      gpr: base.gpr.map((_, i) => (i === 0 ? 0xffff_ffff_ffff_ffffn : BigInt(i) << 40n)),
      rflags: 0x246n,
      fs: { ...base.fs, base: 0xffff_8880_0000_1000n, unusable: 1 },
      kernelGsBase: 0xffff_ffff_8000_0000n,
      memory: new Map([...base.memory, [0x3_ffff_ffff, page]]),
    };
    const json = stateToJson(state);
    expect(json.regs.rax).toBe("0xffffffffffffffff");
    expect(json.msrs.FS_BASE).toBe("0xffff888000001000");
    const again = parseDocument(stateFile(state, "amd"));
    expect(again.profile).toBe("amd");
    expect(normalised(again.state)).toEqual(normalised(state));
  });

  it("a state file without a cpu block gets the defaults", () => {
    const json = { format: "ringspec-state/1", ...stateToJson(base) } as Record<string, unknown>;
    delete json.cpu;
    expect(parseDocument(JSON.stringify(json)).state.cpu).toEqual(base.cpu);
  });

  it("SYSENTER_CS/ESP/EIP and APIC_BASE in msrs, DR0–DR7 in sregs: power-up values when absent, kept when given", () => {
    const plain = parseDocument(SYSCALL_BASIC).state;
    expect([plain.sysenterCs, plain.sysenterEsp, plain.sysenterEip, plain.apicBase]).toEqual([0n, 0n, 0n, 0xfee00900n]);
    expect([plain.dr0, plain.dr1, plain.dr2, plain.dr3, plain.dr6, plain.dr7]).toEqual([0n, 0n, 0n, 0n, 0xffff0ff0n, 0x400n]);
    const doc = parseDocument(editedVector((v) => {
      Object.assign(v.initial.msrs, { SYSENTER_CS: "0x10", SYSENTER_ESP: "0xffff800000001000", SYSENTER_EIP: "0x11000", APIC_BASE: "0xfee00800" });
      Object.assign(v.initial.sregs, { dr0: "0x401000", dr3: "0xffff800000000000", dr6: "0xffff4ff0", dr7: "0x700" });
    }));
    const s = doc.state;
    expect([s.sysenterCs, s.sysenterEsp, s.sysenterEip, s.apicBase]).toEqual([0x10n, 0xffff_8000_0000_1000n, 0x11000n, 0xfee00800n]);
    expect([s.dr0, s.dr3, s.dr6, s.dr7]).toEqual([0x401000n, 0xffff_8000_0000_0000n, 0xffff4ff0n, 0x700n]);
    const json = stateToJson(s);
    expect(json.msrs).toMatchObject({ SYSENTER_CS: "0x10", SYSENTER_ESP: "0xffff800000001000", SYSENTER_EIP: "0x11000", APIC_BASE: "0xfee00800" });
    expect(json.sregs).toMatchObject({ dr0: "0x401000", dr6: "0xffff4ff0", dr7: "0x700" });
    expect(normalised(parseDocument(stateFile(s)).state)).toEqual(normalised(s));
  });

  it("an expected section without the new registers does not compare them", () => {
    const doc = parseDocument(SYSCALL_BASIC);
    if (doc.kind !== "vector") throw new Error("a vector");
    expect(doc.vector.expected.msrs?.SYSENTER_CS).toBeUndefined();
    expect(doc.vector.expected.sregs?.dr6).toBeUndefined();
  });

  it("keeps every field of the devices block (docs/devices.md); absent, it is the reset state", () => {
    const state: ArchState = { ...base, devices: { timer: { period: 4000, vector: 0x31, countdown: 1234, waitingEoi: false }, exitValue: null } };
    const json = stateToJson(state);
    expect(json.devices).toEqual({ timer: { period: 4000, vector: 0x31, countdown: 1234, waiting_eoi: false }, exit_value: null });
    expect(parseDocument(stateFile(state)).state.devices).toEqual(state.devices);
    const exited: ArchState = { ...base, devices: { timer: { period: 7, vector: 0x20, countdown: 0, waitingEoi: true }, exitValue: 0xffff_ffff } };
    expect(parseDocument(stateFile(exited)).state.devices).toEqual(exited.devices);
    const without = { format: "ringspec-state/1", ...stateToJson(base) } as Record<string, unknown>;
    delete without.devices;
    expect(parseDocument(JSON.stringify(without)).state.devices).toEqual(RESET_DEVICES);
    const partial = { ...without, devices: { timer: { period: 10, countdown: 3 } } };
    expect(parseDocument(JSON.stringify(partial)).state.devices).toEqual({ timer: { period: 10, vector: 0x20, countdown: 3, waitingEoi: false }, exitValue: null });
  });

  it("inject makes the events pending from the start", () => {
    const doc = parseDocument(editedVector((v) => (v.inject = { irq: 32, nmi: true })));
    expect(doc.state.cpu.pendingIrq).toBe(32);
    expect(doc.state.cpu.pendingNmi).toBe(true);
  });
});

describe("malformed files: one line naming the JSON path", () => {
  it("a devices block that breaks the timer's invariant or a field's range", () => {
    const withDevices = (devices: unknown) => JSON.stringify({ format: "ringspec-state/1", ...stateToJson(parseDocument(SYSCALL_BASIC).state), devices });
    expect(errorOf(withDevices({ timer: { period: 5, countdown: 0 } }))).toBe("devices.timer.countdown: must be 1..period while the timer is counting");
    expect(errorOf(withDevices({ timer: { period: 5, countdown: 6 } }))).toBe("devices.timer.countdown: must be 1..period while the timer is counting");
    expect(parseDocument(withDevices({ timer: { period: 5, countdown: 0, waiting_eoi: true } })).state.devices.timer.waitingEoi).toBe(true);
    expect(errorOf(withDevices({ timer: { vector: 256 } }))).toMatch(/^devices\.timer\.vector: /);
    expect(errorOf(withDevices({ exit_value: -1 }))).toMatch(/^devices\.exit_value: /);
    expect(errorOf(withDevices({ timer: {}, console: "x" }))).toBe("devices.console: unknown field");
  });

  it("wrong hex", () => {
    expect(errorOf(editedVector((v) => (v.initial.regs.rax = "0xZZ")))).toBe('initial.regs.rax: expected "0x" followed by 1 to 16 hex digits');
    expect(errorOf(editedVector((v) => (v.initial.regs.rbx = "12")))).toMatch(/^initial\.regs\.rbx: /);
    expect(errorOf(editedVector((v) => (v.initial.memory[2].gpa = "0x" + "1".repeat(17))))).toMatch(/^initial\.memory\[2\]\.gpa: /);
    expect(errorOf(editedVector((v) => (v.initial.memory[0].bytes = "abc")))).toBe("initial.memory[0].bytes: expected an even number of hex digits");
  });

  it("a value wider than its field", () => {
    expect(errorOf(editedVector((v) => (v.initial.sregs.cs.selector = "0x10000")))).toBe("initial.sregs.cs.selector: value does not fit in 16 bits");
    expect(errorOf(editedVector((v) => (v.expected.sregs.gdt.limit = "0x10000")))).toBe("expected.sregs.gdt.limit: value does not fit in 16 bits");
    expect(errorOf(editedVector((v) => (v.initial.msrs.SYSENTER_CS = "0x100000000")))).toBe("initial.msrs.SYSENTER_CS: value does not fit in 32 bits");
  });

  it("hex as written: leading zeros and upper-case digits load as their values; a width counts the digits after leading zeros; FS_BASE and fs.base agree by value", () => {
    const loaded = parseDocument(
      editedVector((v) => {
        v.initial.regs.rax = "0x00000000000000FF";
        v.initial.sregs.cs.selector = "0x0000000000000010";
        v.initial.sregs.cs.limit = "0x00000000FFFFFFFF";
        v.initial.sregs.fs.base = "0x0000";
        v.initial.msrs.FS_BASE = "0x0";
        v.initial.msrs.SYSENTER_CS = "0x00000000Fa";
      }),
    );
    expect(loaded.state.gpr[0]).toBe(0xffn);
    expect(loaded.state.cs).toMatchObject({ selector: 0x10, limit: 0xffffffff });
    expect(loaded.state.fs.base).toBe(0n);
    expect(loaded.state.sysenterCs).toBe(0xfan);
    expect(errorOf(editedVector((v) => (v.initial.sregs.cs.limit = "0x0000100000000")))).toBe("initial.sregs.cs.limit: value does not fit in 32 bits");
    expect(errorOf(editedVector((v) => (v.initial.msrs.FS_BASE = "0x1")))).toBe("initial.msrs.FS_BASE: differs from initial.sregs.fs.base");
  });

  it("missing field", () => {
    expect(errorOf(editedVector((v) => delete v.initial.regs.rip))).toMatch(/^initial\.regs\.rip: /);
    expect(errorOf(editedVector((v) => delete v.limits))).toMatch(/^limits: /);
    expect(errorOf(editedVector((v) => delete v.initial.sregs.ss.dpl))).toMatch(/^initial\.sregs\.ss\.dpl: /);
  });

  it("unknown field", () => {
    expect(errorOf(editedVector((v) => (v.initial.regs.rzz = "0x0")))).toBe("initial.regs.rzz: unknown field");
    expect(errorOf(editedVector((v) => (v.expected.sregs.cs.color = 1)))).toBe("expected.sregs.cs.color: unknown field");
  });

  it("wrong type or range", () => {
    expect(errorOf(editedVector((v) => (v.initial.sregs.cs.dpl = 4)))).toMatch(/^initial\.sregs\.cs\.dpl: /);
    expect(errorOf(editedVector((v) => (v.expected.exit = "halt")))).toMatch(/^expected\.exit: /);
    expect(errorOf(editedVector((v) => (v.profile = "arm")))).toMatch(/^profile: /);
  });

  it("FS_BASE and GS_BASE must equal the segment bases", () => {
    expect(errorOf(editedVector((v) => (v.initial.msrs.FS_BASE = "0x1000")))).toBe("initial.msrs.FS_BASE: differs from initial.sregs.fs.base");
    expect(errorOf(editedVector((v) => (v.initial.sregs.gs.base = "0x2000")))).toBe("initial.msrs.GS_BASE: differs from initial.sregs.gs.base");
  });

  it("states outside the model are refused", () => {
    expect(errorOf(editedVector((v) => (v.initial.sregs.efer = "0x1")))).toMatch(/^initial: not covered by the model: efer: LME and LMA must be set/);
    expect(errorOf(editedVector((v) => (v.initial.sregs.cr0 = "0x11")))).toMatch(/^initial: not covered by the model: cr0: /);
    expect(errorOf(editedVector((v) => (v.initial.sregs.cr4 = "0x1620")))).toMatch(/^initial: not covered by the model: cr4: bits 0x1000 are outside the model/);
    const base = parseDocument(SYSCALL_BASIC).state;
    expect(errorOf(stateFile({ ...base, rflags: 0x20002n }))).toMatch(/^\$: not covered by the model: rflags: VM/);
    expect(errorOf(stateFile({ ...base, dr7: 0x401n }))).toMatch(/^\$: not covered by the model: dr7: enabled breakpoints/);
    expect(errorOf(stateFile({ ...base, dr7: 0x2400n }))).toMatch(/^\$: not covered by the model: dr7: enabled breakpoints .* general detection/);
    expect(errorOf(stateFile({ ...base, dr6: 1n << 32n }))).toMatch(/^\$: not covered by the model: dr6: bits 63:32/);
  });

  it("CR4.DE and CR4.PCIDE are inside the model", () => {
    const base = parseDocument(SYSCALL_BASIC).state;
    const state = { ...base, cr4: base.cr4 | (1n << 3n) | (1n << 17n) };
    expect(parseDocument(stateFile(state)).state.cr4).toBe(state.cr4);
  });

  it("not JSON, or not a ringspec document", () => {
    expect(errorOf("{")).toMatch(/^not valid JSON \(/);
    expect(errorOf('{"format": "ringspec-vector/2"}')).toBe('format: expected "ringspec-vector/1" or "ringspec-state/1"');
    expect(errorOf("[]")).toBe('format: expected "ringspec-vector/1" or "ringspec-state/1"');
  });
});

describe("JSON Schema", () => {
  const committed = readFileSync(fileURLToPath(new URL("../../contract/schema.json", import.meta.url)), "utf8");

  it("the committed contract/schema.json equals the generated one (regenerate: node cli/bin.js schema > contract/schema.json)", () => {
    expect(committed).toBe(jsonSchemaText());
  });

  it("describes both formats, with hex strings for 64-bit values and every $ref defined", () => {
    const schema = JSON.parse(committed) as { $schema: string; anyOf: unknown[]; $defs: Record<string, Record<string, unknown>> };
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.anyOf).toEqual([{ $ref: "#/$defs/vector" }, { $ref: "#/$defs/stateFile" }]);
    const hex64 = schema.$defs.hex64!;
    expect(hex64.type).toBe("string");
    expect(new RegExp(hex64.pattern as string).test("0xffffffffffffffff")).toBe(true);
    expect(new RegExp(hex64.pattern as string).test("0x1ffffffffffffffff")).toBe(false);
    const hex16 = new RegExp(schema.$defs.hex16!.pattern as string);
    expect(hex16.test("0x002b") && !hex16.test("0x10000")).toBe(true);
    // Fields with defaults are optional on input.
    const segment = schema.$defs.segment as { required: string[] };
    expect(segment.required).not.toContain("unusable");
    const refs = [...committed.matchAll(/"\$ref": "#\/\$defs\/([A-Za-z0-9]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(schema.$defs[ref], ref).toBeDefined();
  });
});
