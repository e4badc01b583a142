// The QEMU engine's readers on samples recorded from Debian's QEMU 7.2 (record-samples.ts): the
// migration stream decoded by its own JSON description, the `-d int` log, and which states the
// engine refuses.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../../contract/load.ts";
import { DEFAULT_CPU, type ArchState } from "../../../contract/state.ts";
import { decodeSection, parseMigrationStream } from "../../../engines/qemu/migration.ts";
import { cpuStateFromStream, segmentFromFlags } from "../../../engines/qemu/cpu-state.ts";
import { parseIntLog, summarizeStep } from "../../../engines/qemu/int-log.ts";
import { qemuCannotInstall, ramSizeFor } from "../../../engines/qemu/representable.ts";
import { qemuArguments } from "../../../engines/qemu/engine.ts";
import { EngineError } from "../../../engines/host/errors.ts";
import { compareInstalled } from "../../../engines/host/verify.ts";
import { vectorPath } from "../../helpers/fixture.ts";

const sample = (name: string) => new URL(`./samples/${name}`, import.meta.url);

function vectorState(name: string): ArchState {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc.state;
}

describe("the migration stream", () => {
  const bytes = gunzipSync(readFileSync(sample("migration-syscall-basic.bin.gz")));
  const stream = parseMigrationStream(bytes);

  it("splits into the device sections its JSON description names, RAM skipped", () => {
    expect(stream.machine).toMatch(/^pc-i440fx-/);
    expect(stream.capabilities).toContain("x-ignore-shared");
    for (const name of ["cpu", "cpu_common", "apic", "timer"]) expect(stream.sections.has(name)).toBe(true);
    expect(stream.sections.has("ram")).toBe(false);
  });

  it("decodes the cpu section field by field", () => {
    const cpu = decodeSection(stream.sections.get("cpu")!, stream.description);
    expect(cpu.get("env.efer")).toBe(0xd01n);
    expect(cpu.get("env.segs[1].selector")).toBe(0x2bn);
    expect(cpu.get("cpu/msr_smi_count:env.msr_smi_count")).toBe(2n);
  });

  it("gives back exactly the state the boot image installed (syscall-basic's initial state)", () => {
    const want = vectorState("syscall-basic");
    const got = cpuStateFromStream(stream, false);
    expect(compareInstalled(want, { ...got.registers, cpu: got.cpu })).toBeNull();
    expect(got.smbase).toBe(0xe8000n);
    expect(got.cpu).toEqual(DEFAULT_CPU);
  });

  it("turns truncated or corrupted streams into protocol errors, not crashes", () => {
    const cut = bytes.subarray(0, 5000);
    expect(() => parseMigrationStream(cut)).toThrow(EngineError);
    const bad = Buffer.from(bytes);
    bad[0] = 0;
    expect(() => parseMigrationStream(bad)).toThrow(/bad magic/);
    const shifted = Buffer.concat([bytes.subarray(0, 200), bytes.subarray(201)]);
    expect(() => parseMigrationStream(shifted)).toThrow(EngineError);
  });

  it("maps QEMU's descriptor flags to segment fields (a not-present cache is unusable)", () => {
    expect(segmentFromFlags(0x10n, 0n, 0xffffffffn, 0xc09300n)).toMatchObject({ type: 3, s: 1, dpl: 0, present: 1, db: 1, g: 1, l: 0, unusable: 0 });
    expect(segmentFromFlags(0x2bn, 0n, 0xffffffffn, 0xa0fb00n)).toMatchObject({ type: 11, dpl: 3, l: 1, db: 0 });
    expect(segmentFromFlags(0n, 0n, 0n, 0n)).toMatchObject({ present: 0, unusable: 1 });
  });
});

describe("the -d int log", () => {
  const log = (name: string) => readFileSync(sample(`int-log-${name}.txt`), "latin1");
  /** The case's part: after the last RSM of the boot image. */
  const caseEntries = (name: string) => {
    const entries = parseIntLog(log(name));
    const last = entries.map((e) => e.kind === "smm" && e.what === "after RSM").lastIndexOf(true);
    return entries.slice(last + 1);
  };

  it("reads a fault as an exception with its error code", () => {
    expect(summarizeStep(caseEntries("gp-noncanonical-load"))).toEqual({ delivered: { vector: 13, errorCode: 0, source: "exception" }, tripleFault: false });
  });

  it("reads INT3 as software, an IRQ as external, an NMI as nmi", () => {
    expect(summarizeStep(caseEntries("int3-ring3-dpl3")).delivered).toEqual({ vector: 3, errorCode: undefined, source: "software" });
    expect(summarizeStep(caseEntries("irq-ring0-if1")).delivered).toEqual({ vector: 0x21, errorCode: undefined, source: "external" });
    expect(summarizeStep(caseEntries("nmi-ring3")).delivered).toEqual({ vector: 2, errorCode: undefined, source: "nmi" });
  });

  it("sees the triple fault after INT 0x40 → #NP → #DF (QEMU's IDT error code vector×16+2 kept as logged)", () => {
    const entries = caseEntries("df-contributory-np-then-gp");
    const errorCodes = entries.flatMap((e) => (e.kind === "delivery" ? [e.errorCode] : []));
    expect(errorCodes).toContain(0x402);
    expect(summarizeStep(entries).tripleFault).toBe(true);
  });

  it("refuses SMM entries inside a case (the boot image is done by then)", () => {
    expect(() => summarizeStep(parseIntLog("SMM: enter\n"))).toThrow(EngineError);
  });
});

describe("what the QEMU engine installs", () => {
  const state = vectorState("syscall-basic");

  it("accepts the vectors' states and sizes RAM to the case", () => {
    expect(qemuCannotInstall(state)).toBeNull();
    expect(ramSizeFor(state)).toBe(32 << 20);
    const high = new Map(state.memory);
    high.set(0x5000000 / 4096, new Uint8Array(4096).fill(1));
    expect(ramSizeFor({ ...state, memory: high })).toBe(96 << 20);
  });

  it("refuses what RSM cannot install, naming the field", () => {
    expect(qemuCannotInstall({ ...state, cpu: { ...state.cpu, shadow: "sti" } })).toMatch(/^cpu\.shadow/);
    expect(qemuCannotInstall({ ...state, cpu: { ...state.cpu, halted: true } })).toMatch(/^cpu\.halted/);
    expect(qemuCannotInstall({ ...state, ss: { ...state.ss, dpl: 0 } })).toMatch(/^sregs\.ss\.dpl/);
    const vga = new Map(state.memory);
    vga.set(0xb8000 / 4096, new Uint8Array(4096).fill(7));
    expect(qemuCannotInstall({ ...state, memory: vga })).toMatch(/^memory at 0xb8000/);
  });

  it("starts QEMU without a BIOS, with SMM, the gdbstub and QMP on sockets, and RAM in a shared file", () => {
    const args = qemuArguments({
      cpu: "max,vendor=GenuineIntel", firmware: "/w/fw.bin", ramFile: "/w/ram", ramSize: 32 << 20,
      qmpSocket: "/w/qmp", gdbSocket: "/w/gdb", logFile: "/w/log", chunks: [{ file: "/w/m0", address: 0x1000 }],
    });
    const joined = args.join(" ");
    expect(joined).toContain("-machine pc,accel=tcg,smm=on,memory-backend=ram");
    expect(joined).toContain("mem-path=/w/ram,share=on");
    expect(joined).toContain("-bios /w/fw.bin");
    expect(joined).toContain("-device loader,file=/w/m0,addr=0x1000,force-raw=on");
    expect(joined).toContain("-action reboot=shutdown,shutdown=pause");
    expect(joined).toContain("-d int -D /w/log");
  });

  it("leaves the interrupt log out for free runs (benchmarks)", () => {
    const args = qemuArguments({ cpu: "max", firmware: "/w/fw.bin", ramFile: "/w/ram", ramSize: 32 << 20, qmpSocket: "/w/qmp", gdbSocket: "/w/gdb", chunks: [] });
    expect(args).not.toContain("-d");
    expect(args).not.toContain("-D");
  });
});
