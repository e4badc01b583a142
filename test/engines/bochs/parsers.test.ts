// The Bochs engine's readers on debugger output and logs recorded from Debian's Bochs 2.7
// (record-samples.ts): parameter-tree dumps, `r`, `s` and `xp` output, the CPU log's events and
// the register dump at a triple fault; the page-table walk; which states the engine refuses.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../../contract/load.ts";
import type { ArchState } from "../../../contract/state.ts";
import { parseParamDump, readParam, ParamSegment } from "../../../engines/bochs/param-tree.ts";
import { cpuFromDumps, parseRegisters, STATE_PARAMS } from "../../../engines/bochs/cpu-state.ts";
import { parseNext } from "../../../engines/bochs/debugger.ts";
import { parseBochsLog, parseShutdownDump, summarizeBochsStep } from "../../../engines/bochs/log.ts";
import { parseXpGiant, ramRuns, walkPageTables } from "../../../engines/bochs/memory.ts";
import { bochsCannotInstall } from "../../../engines/bochs/engine.ts";
import { bochsConfig } from "../../../engines/bochs/config.ts";
import { EngineError } from "../../../engines/host/errors.ts";
import { compareInstalled } from "../../../engines/host/verify.ts";
import { vectorPath } from "../../helpers/fixture.ts";

const sample = (name: string) => readFileSync(new URL(`./samples/${name}`, import.meta.url), "latin1");

function vectorState(name: string): ArchState {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc.state;
}

const recorded = JSON.parse(sample("state-syscall-basic.json")) as { registers: string; shows: string[]; step: string; xp: string };

describe("Bochs debugger output", () => {
  it("parses parameter-tree groups and single values", () => {
    const cs = parseParamDump(recorded.shows[STATE_PARAMS.indexOf("cpu0.CS")]!);
    expect(cs.path).toBe("cpu0.CS");
    expect(readParam(cs, ParamSegment)).toMatchObject({ selector: 0x2bn, dpl: 3n, l: 1n, valid: 1n });
    expect(parseParamDump("show param name: <cpu0.icount>\nicount = 8520\n")).toEqual({ path: "cpu0.icount", value: "8520" });
  });

  it("rejects output of another form with the parameter named", () => {
    expect(() => parseParamDump("no such thing")).toThrow(EngineError);
    const broken = parseParamDump("show param name: <cpu0.CS>\nCS = {\n  selector = zz\n}\n");
    expect(() => readParam(broken, ParamSegment)).toThrow(/cpu0\.CS\.selector/);
  });

  it("gives back exactly the state the boot image installed (syscall-basic's initial state)", () => {
    const cpu = cpuFromDumps(recorded.registers, recorded.shows);
    expect(cpu.inSmm).toBe(false);
    expect(compareInstalled(vectorState("syscall-basic"), cpu.registers)).toBeNull();
  });

  it("reads `r` and the stop report of `s`", () => {
    const regs = parseRegisters(recorded.registers);
    expect(regs.rip).toBe(0x200000n);
    expect(regs.rflags).toBe(0x10e83n);
    const next = parseNext(recorded.step);
    expect(next).toMatchObject({ selector: 8, rip: 0x11000n, text: "hlt" });
    expect(parseNext("Next at t=319\n(0).[319] ??? (physical address not available)\n")).toEqual({ ticks: 319n, unavailable: true });
    expect(() => parseNext("something else")).toThrow(EngineError);
  });

  it("reads a page with `xp /512gx` (the vectors' GDT at 0x8000)", () => {
    const page = parseXpGiant(recorded.xp, 0x8000n, 512);
    const gdt = vectorState("syscall-basic").memory.get(8)!;
    expect(Buffer.from(page).equals(Buffer.from(gdt))).toBe(true);
    expect(() => parseXpGiant(recorded.xp, 0x8000n, 513)).toThrow(/returned 4096 of 4104/);
  });
});

describe("the Bochs CPU log", () => {
  const summary = (name: string) => summarizeBochsStep(parseBochsLog(sample(`log-${name}.txt`)));

  it("reads deliveries with their source and error code", () => {
    expect(summary("gp-noncanonical-load")).toMatchObject({ delivered: { vector: 13, errorCode: 0, source: "exception" }, haltedWithIf0: true });
    expect(summary("int3-ring3-dpl3").delivered).toEqual({ vector: 3, errorCode: undefined, source: "software" });
    expect(summary("irq-ring0-if1").delivered).toEqual({ vector: 0x21, errorCode: undefined, source: "external" });
    expect(summary("nmi-ring3").delivered).toEqual({ vector: 2, errorCode: undefined, source: "nmi" });
    expect(summary("mov-ss-shadow-single-step").delivered).toEqual({ vector: 1, errorCode: undefined, source: "exception" });
  });

  it("sees the triple fault and reads the register dump Bochs writes then", () => {
    const log = sample("log-df-contributory-np-then-gp.txt");
    const s = summarizeBochsStep(parseBochsLog(log));
    expect(s.tripleFault).toBe(true);
    expect(s.panics).toEqual([]);
    const dump = parseShutdownDump(log)!;
    expect(dump.rip).toBe(0x10000n);
    expect(dump.gpr[4]).toBe(0x20000n);
    expect(dump.segments.cs).toEqual({ selector: 8, base: 0n, limit: 0xffffffff, g: 1, db: 0 });
    expect(dump.efer).toBe(0xd01n);
    expect(dump.cr3).toBe(0x1000n);
  });

  it("reports other panics", () => {
    const s = summarizeBochsStep(parseBochsLog("00000000001p[CPU0  ] >>PANIC<< something broke\n"));
    expect(s.panics).toEqual(["something broke"]);
  });
});

describe("Bochs memory reading", () => {
  it("walks 4-level page tables (2 MiB and 4 KiB pages) and merges runs that stay in RAM", async () => {
    const tables = new Map<bigint, Uint8Array>();
    const table = (address: bigint, entries: Record<number, bigint>) => {
      const page = new Uint8Array(4096);
      const view = new DataView(page.buffer);
      for (const [i, v] of Object.entries(entries)) view.setBigUint64(8 * Number(i), v, true);
      tables.set(address, page);
    };
    table(0x1000n, { 0: 0x2003n });
    table(0x2000n, { 0: 0x3003n });
    table(0x3000n, { 0: 0x4003n, 1: 0x200083n, 2: 0x400083n });
    table(0x4000n, { 0: 0x0003n, 1: 0x1003n, 5: 0xb8003n });
    const { mappings, tables: visited } = await walkPageTables(0x1000n, async (a) => tables.get(a) ?? null);
    expect(visited).toEqual([0x1000n, 0x2000n, 0x3000n, 0x4000n]);
    expect(mappings).toContainEqual({ linear: 0x200000n, physical: 0x200000n, size: 0x200000n });
    const runs = ramRuns(mappings, 0x500000n, { start: 0xa0000n, end: 0x100000n });
    // 0x0–0x1fff is one run; the page mapping 0xb8000 (VGA) is dropped; 2 MiB pages clipped to RAM.
    expect(runs).toEqual([
      { linear: 0n, physical: 0n, size: 0x2000n },
      { linear: 0x200000n, physical: 0x200000n, size: 0x300000n },
    ]);
  });
});

describe("what the Bochs engine installs", () => {
  const state = vectorState("syscall-basic");

  it("accepts the vectors' states", () => {
    expect(bochsCannotInstall(state)).toBeNull();
  });

  it("refuses what its APIC or RSM cannot give, naming the field", () => {
    expect(bochsCannotInstall({ ...state, cpu: { ...state.cpu, pendingIrq: 14 } })).toMatch(/^cpu\.pending_irq = 14/);
    expect(bochsCannotInstall({ ...state, cpu: { ...state.cpu, nmiBlocked: true } })).toMatch(/^cpu\.nmi_blocked/);
    expect(bochsCannotInstall({ ...state, cpu: { ...state.cpu, shadow: "movss" } })).toMatch(/^cpu\.shadow/);
  });

  it("writes a configuration with the ROM at the top of 4 GiB and triple faults that reset", () => {
    const text = bochsConfig({ rom: "/w/rom.bin", romAddress: 0xfffe0000n, megs: 32, cpuModel: "corei7_icelake_u", log: "/w/log", vgaRom: "/v.bin" });
    expect(text).toContain("romimage: file=/w/rom.bin, address=0xfffe0000");
    expect(text).toContain("reset_on_triple_fault=1");
    expect(text).toContain("debug: action=ignore, cpu0=report");
    // Free runs (benchmarks) leave the CPU's debug messages out.
    const quiet = bochsConfig({ rom: "/w/rom.bin", romAddress: 0xfffe0000n, megs: 32, cpuModel: "corei7_icelake_u", log: "/w/log", vgaRom: "/v.bin", cpuDebugLog: false });
    expect(quiet).toContain("debug: action=ignore\n");
    expect(quiet).not.toContain("cpu0=report");
    expect(() => bochsConfig({ rom: "/w/a,b", romAddress: 0n, megs: 32, cpuModel: "x", log: "/l", vgaRom: "/v" })).toThrow(/comma/);
  });
});
