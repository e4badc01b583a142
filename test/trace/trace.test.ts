// Traces as data (trace/record.ts) and their two renderers: text lines (trace/text.ts) and JSON
// lines validated by their schema (trace/json.ts).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../contract/load.ts";
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent, StepView } from "../../contract/engine.ts";
import { traceRecord, tracer, type TraceRecord } from "../../trace/record.ts";
import { traceLine } from "../../trace/text.ts";
import { TraceRecordJson, traceJsonLine, traceJsonSchemaText } from "../../trace/json.ts";
import { runEngine } from "../../engines/runner.ts";
import { createEngine, ENGINE_NAMES } from "../../engines/registry.ts";

const VECTOR = (name: string) => fileURLToPath(new URL(`../../conformance/vectors/${name}.json`, import.meta.url));
const before: ArchState = parseDocument(readFileSync(VECTOR("syscall-basic"), "utf8")).state;
const SYSCALL: EngineEvent = { kind: "retired", rip: 0x200000n, instruction: { bytes: Uint8Array.of(0x0f, 0x05), length: 2 } };

function withWord(s: ArchState, address: number, bytes: readonly number[]): ArchState {
  const n = address >> 12;
  const page = new Uint8Array(s.memory.get(n) ?? new Uint8Array(4096));
  page.set(bytes, address & 0xfff);
  return { ...s, memory: new Map([...s.memory, [n, page]]) };
}

/** Every record of a run on `engine`. */
function traceOf(vector: string, engine: string, maxSteps: number, rules = false): TraceRecord[] {
  const doc = parseDocument(readFileSync(VECTOR(vector), "utf8"));
  const e = createEngine(engine, { rules });
  e.load(doc.state, doc.profile ?? "intel");
  const records: TraceRecord[] = [];
  runEngine(e, { maxSteps, timeoutMs: 60_000, onStep: tracer((r) => records.push(r)) });
  return records;
}

describe("trace records", () => {
  it("hold the step, RIP, bytes, disassembly, event and every change with its value before and after", () => {
    const after: ArchState = {
      ...before,
      gpr: before.gpr.map((v, i) => (i === 1 ? 0x200002n : v)),
      rip: 0x11000n,
      cs: { ...before.cs, selector: 0x8, dpl: 0 },
      cpu: { ...before.cpu, shadow: "sti" },
    };
    const record = traceRecord({ step: 3, before, event: SYSCALL, after });
    expect(record).toEqual({
      step: 3,
      rip: "0x200000",
      linear: "0x200000",
      instruction: { bytes: "0f05", length: 2, disassembly: "syscall", source: "engine", bitness: 64 },
      event: { kind: "retired" },
      changes: [
        { field: "regs.rcx", before: "0x0", after: "0x200002" },
        { field: "regs.rip", before: "0x200000", after: "0x11000" },
        { field: "sregs.cs.selector", before: "0x2b", after: "0x8" },
        { field: "sregs.cs.dpl", before: 3, after: 0 },
        { field: "cpu.shadow", before: "none", after: "sti" },
      ],
    });
  });

  it("a boundary event has no instruction; a step whose engine decoded nothing shows the bytes in memory, marked so", () => {
    const nmi: EngineEvent = { kind: "delivered", rip: 0x200000n, vector: 2, errorCode: undefined, source: "nmi" };
    expect(traceRecord({ step: 1, before, event: nmi, after: before }).instruction).toBeNull();
    const fetchFault: EngineEvent = { ...nmi, vector: 14, errorCode: 0x15, source: "exception", instruction: { bytes: new Uint8Array(0), length: 0 } };
    expect(traceRecord({ step: 1, before, event: fetchFault, after: before }).instruction).toEqual({
      bytes: "0f05", length: 2, disassembly: "syscall", source: "memory", bitness: 64,
    });
  });

  it("carry the rule IDs when the engine reports them (spec with rules on)", () => {
    const records = traceOf("syscall-basic", "spec", 1, true);
    expect(records[0]!.rules).toEqual(expect.arrayContaining(["RF-01", "SYSCALL-03", "SYSCALL-07"]));
    expect(traceOf("syscall-basic", "spec", 1)[0]!.rules).toBeUndefined();
    expect(traceOf("syscall-basic", "impl", 1)[0]!.rules).toBeUndefined();
  });

  it("are the same on both engines, record for record (rules aside)", () => {
    for (const vector of ["syscall-sysret-roundtrip", "single-step-ring3", "pf-user-write-notpresent", "nmi-ring3", "df-rsp0-unmapped-ist"]) {
      const [spec, impl] = ENGINE_NAMES.map((e) => traceOf(vector, e, 12));
      expect(impl, vector).toEqual(spec);
      expect(spec!.length, vector).toBeGreaterThan(1);
    }
  });
});

describe("text lines", () => {
  it("show the disassembly, the event and every changed field's new value; RFLAGS with the flags flipped; memory as words", () => {
    const after: ArchState = withWord(
      {
        ...before,
        gpr: before.gpr.map((v, i) => (i === 1 ? 0x200002n : i === 11 ? 0x10e83n : v)),
        rip: 0x11000n,
        rflags: 0x10683n,
        cs: { ...before.cs, selector: 0x8, dpl: 0 },
        cpu: { ...before.cpu, shadow: "sti" },
      },
      0x1fff8,
      [0xef, 0xbe],
    );
    const halted: EngineEvent = { kind: "halted", rip: 0x200000n, instruction: SYSCALL.instruction! };
    expect(traceLine(traceRecord({ step: 3, before, event: halted, after }))).toBe(
      "3  0x200000  syscall  [halted]  rcx=0x200002 r11=0x10e83 rip=0x11000 rflags=0x10683 (-OF) cs.selector=0x8 cs.dpl=0 cpu.shadow=sti mem[0x1fff8]=efbe000000000000",
    );
  });

  it("leave out RIP when it moves to the next instruction, and mark boundary events", () => {
    const next = { ...before, rip: before.rip + 2n };
    expect(traceLine(traceRecord({ step: 1, before, event: SYSCALL, after: next }))).toBe("1  0x200000  syscall  [retired]");
    const nmi: EngineEvent = { kind: "delivered", rip: before.rip, vector: 2, errorCode: undefined, source: "nmi" };
    expect(traceLine(traceRecord({ step: 2, before, event: nmi, after: before }))).toBe("2  0x200000  (event at instruction boundary)  [delivered vector 2 (NMI)]");
  });

  it("leave out the timer counting down by one (docs/devices.md), but show a reload or a tick", () => {
    const timer = (countdown: number, waitingEoi = false) => ({ ...before, devices: { ...before.devices, timer: { period: 10, vector: 0x20, countdown, waitingEoi } } });
    const step = (a: ArchState, b: ArchState) => traceLine(traceRecord({ step: 1, before: a, event: SYSCALL, after: { ...b, rip: a.rip + 2n } }));
    expect(step(timer(5), timer(4))).toBe("1  0x200000  syscall  [retired]");
    expect(step(timer(1), timer(0, true))).toBe("1  0x200000  syscall  [retired]  devices.timer.countdown=0 devices.timer.waiting_eoi=true");
    expect(step(timer(4), timer(10))).toBe("1  0x200000  syscall  [retired]  devices.timer.countdown=10");
    const exited: EngineEvent = { kind: "exited", rip: before.rip, value: 3 };
    expect(traceLine(traceRecord({ step: 2, before, event: exited, after: before }))).toBe("2  0x200000  (exited)  [exited with value 3]");
  });

  it("name error codes, I/O and stops", () => {
    const line = (event: EngineEvent) => traceLine(traceRecord({ step: 1, before, event, after: before } satisfies StepView));
    expect(line({ kind: "delivered", rip: before.rip, vector: 14, errorCode: 6, source: "exception", instruction: SYSCALL.instruction! })).toBe(
      "1  0x200000  syscall  [delivered vector 14 (exception) error code 0x6]",
    );
    expect(line({ kind: "io", rip: before.rip, direction: "out", port: 0x80, size: 1, value: 0x41n, instruction: SYSCALL.instruction! })).toContain("[out port 0x80 size 1 value 0x41]");
    expect(line({ kind: "unsupported", rip: before.rip, bytes: Uint8Array.of(0x0f, 0x05), reason: "no semantics for syscall" })).toContain("[unsupported: no semantics for syscall]");
  });
});

describe("JSON lines", () => {
  it("one record per line, valid against the schema, reading back to the record", () => {
    for (const engine of ENGINE_NAMES)
      for (const record of traceOf("nmi-ring3", engine, 20, true)) {
        const line = traceJsonLine(record);
        expect(line).not.toContain("\n");
        const parsed = TraceRecordJson.parse(JSON.parse(line));
        expect(parsed).toEqual(record);
      }
  });

  it("the schema refuses a record with a field it does not define", () => {
    const record = traceOf("syscall-basic", "impl", 1)[0]!;
    expect(TraceRecordJson.safeParse({ ...record, extra: 1 }).success).toBe(false);
    expect(TraceRecordJson.safeParse({ ...record, step: 0 }).success).toBe(false);
  });

  it("the committed trace/trace-record.schema.json equals the generated one (regenerate: node cli/bin.js schema trace > trace/trace-record.schema.json)", () => {
    const committed = readFileSync(fileURLToPath(new URL("../../trace/trace-record.schema.json", import.meta.url)), "utf8");
    expect(committed).toBe(traceJsonSchemaText());
  });
});
