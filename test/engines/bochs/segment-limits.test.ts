// The segment caches Bochs 2.7 exits on (engines/bochs/segment-limits.ts) and what the engine
// reports when Bochs exits mid-case: no emulator needed (the refusals happen before Bochs starts,
// the exit is a closed stream and a log file).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { parseDocument } from "../../../contract/load.ts";
import type { ArchState, Segment } from "../../../contract/state.ts";
import { BochsEngine, bochsCannotInstall, bochsExitError, readLogPanic } from "../../../engines/bochs/engine.ts";
import { bochsRsmRefusal, bochsStackSegmentProblem, isStackSegmentAssertion } from "../../../engines/bochs/segment-limits.ts";
import { BochsDebugger } from "../../../engines/bochs/debugger.ts";
import { firstPanic } from "../../../engines/bochs/log.ts";
import { ByteStream } from "../../../engines/host/stream.ts";
import { EngineError } from "../../../engines/host/errors.ts";
import { vectorPath } from "../../helpers/fixture.ts";

const exitLog = readFileSync(new URL("./samples/log-ss-not-writable-exit.txt", import.meta.url), "latin1");
const SS_ASSERTION = 'failed assertion "IS_DATA_SEGMENT_WRITEABLE(BX_CPU_THIS_PTR sregs[BX_SEG_REG_SS].cache.type)" at stack.cc:72';

function vectorState(name: string): ArchState {
  const doc = parseDocument(readFileSync(vectorPath(name), "utf8"));
  if (doc.kind !== "vector") throw new Error(name);
  return doc.state;
}

/** syscall-basic's state (64-bit mode, flat writable SS), in 64-bit or compatibility mode, with SS changed. */
function withSs(ss: Partial<Segment>, mode: "64-bit" | "compat" = "compat"): ArchState {
  const s = vectorState("syscall-basic");
  const cs = mode === "compat" ? { ...s.cs, l: 0, db: 1 } : s.cs;
  return { ...s, cs, ss: { ...s.ss, ...ss } };
}

describe("segment caches Bochs's RSM stops on", () => {
  it("refuses a usable segment register with S = 0, naming it, before Bochs starts", async () => {
    const base = vectorState("syscall-basic");
    expect(bochsRsmRefusal(base)).toBeNull();
    expect(bochsCannotInstall({ ...base, ss: { ...base.ss, s: 0, type: 13 } })).toMatch(/^sregs\.ss: S = 0 \(system type 13\) in a usable SS: Bochs's RSM stops on it/);
    expect(bochsCannotInstall({ ...base, fs: { ...base.fs, s: 0, type: 12 } })).toMatch(/^sregs\.fs: S = 0/);
    // An unusable cache is restored as not valid: Bochs takes it, whatever S holds.
    expect(bochsCannotInstall({ ...base, ss: { ...base.ss, s: 0, unusable: 1 } })).toBeNull();
    // The refusal comes before any process: a Bochs that does not exist is never started.
    const engine = new BochsEngine({ program: "/nonexistent/bochs" });
    const load = engine.load({ ...base, ss: { ...base.ss, s: 0, type: 1 } }, "intel");
    await expect(load).rejects.toMatchObject({ kind: "unsupported-state", message: expect.stringMatching(/^bochs: sregs\.ss: S = 0/) });
    await engine.close();
  });
});

describe("the SS attributes Bochs's stack accesses assert on", () => {
  it("outside 64-bit mode: a usable SS that is not present or lacks type bit 1", () => {
    expect(bochsStackSegmentProblem(withSs({ type: 0 }))).toBe("sregs.ss: type 0 without its W/R bit (bit 1) outside 64-bit mode");
    expect(bochsStackSegmentProblem(withSs({ type: 9 }))).toMatch(/^sregs\.ss: type 9 /);
    expect(bochsStackSegmentProblem(withSs({ type: 5 }))).toMatch(/^sregs\.ss: type 5 /);
    expect(bochsStackSegmentProblem(withSs({ type: 3, present: 0 }))).toBe("sregs.ss: not present outside 64-bit mode");
  });

  it("leaves alone what Bochs runs: writable data, execute/read code, an unusable SS, any SS in 64-bit mode", () => {
    expect(bochsStackSegmentProblem(withSs({ type: 3 }))).toBeNull();
    expect(bochsStackSegmentProblem(withSs({ type: 7 }))).toBeNull();
    // IRETQ-02's SS (docs/deviations): execute/read conforming code; Bochs runs it (bit 1 is set).
    expect(bochsStackSegmentProblem(withSs({ type: 14 }))).toBeNull();
    expect(bochsStackSegmentProblem(withSs({ type: 0, unusable: 1 }))).toBeNull();
    // 64-bit mode at CPL 0: even a NULL SS is legal (SDM), and Bochs checks no SS attribute there.
    expect(bochsStackSegmentProblem(withSs({ type: 0 }, "64-bit"))).toBeNull();
    expect(bochsStackSegmentProblem(withSs({ selector: 0, type: 0, present: 0 }, "64-bit"))).toBeNull();
    // Such a starting state is not refused up front: a run that faults before any stack access
    // works on Bochs (two cases of the session-9 table did).
    expect(bochsCannotInstall(withSs({ type: 0 }))).toBeNull();
  });

  it("recognizes Bochs's failed SS assertions in its log", () => {
    expect(isStackSegmentAssertion(SS_ASSERTION)).toBe(true);
    expect(isStackSegmentAssertion('failed assertion "BX_CPU_THIS_PTR sregs[BX_SEG_REG_SS].cache.p" at stack.cc:71')).toBe(true);
    expect(isStackSegmentAssertion('failed assertion "IS_DATA_SEGMENT_WRITEABLE(BX_CPU_THIS_PTR sregs[BX_SEG_REG_DS].cache.type)" at access.cc:1')).toBe(false);
    expect(isStackSegmentAssertion("SMM restore: restored valid non segment 2 !")).toBe(false);
  });
});

describe("when Bochs exits mid-case", () => {
  const closed = new EngineError("crash", 'bochs: connection closed while waiting for the output of "s"');

  it("finds the first panic line of the log, not a triple fault's", () => {
    expect(firstPanic(exitLog)).toBe(SS_ASSERTION);
    expect(firstPanic("00000000319p[CPU0  ] >>PANIC<< exception(): 3rd (14) exception with no resolution\n")).toBeUndefined();
    expect(firstPanic("00000000001i[CPU0  ] nothing wrong\n")).toBeUndefined();
  });

  it("reports the failed SS assertion as unsupported state naming sregs.ss, other panics in the crash reason", () => {
    const e = bochsExitError(closed, SS_ASSERTION, withSs({ type: 0 }));
    expect(e.kind).toBe("unsupported-state");
    expect(e.message).toBe(`bochs: sregs.ss: type 0 without its W/R bit (bit 1) outside 64-bit mode: Bochs cannot hold an SS that is not a writable data segment; at a stack access it exited (its log: ${SS_ASSERTION})`);
    // The run itself may have made the SS so (a far jump to compatibility mode): still named.
    expect(bochsExitError(closed, SS_ASSERTION, withSs({}, "64-bit")).message).toMatch(/^bochs: sregs\.ss \(as the run left it\): /);
    const other = bochsExitError(closed, "something broke", withSs({}));
    expect(other.kind).toBe("crash");
    expect(other.message).toBe(`bochs: connection closed while waiting for the output of "s"; Bochs's log: something broke`);
    expect(bochsExitError(closed, undefined, withSs({}))).toBe(closed);
    expect(bochsExitError(closed, "x".repeat(1000), withSs({})).message.length).toBeLessThan(400);
  });

  it("reads the log's panic after the engine's last read, within a bounded tail", () => {
    const dir = mkdtempSync(join(tmpdir(), "bochs-log-"));
    try {
      const file = join(dir, "bochs.log");
      const filler = "00000000001i[CPU0  ] filler line of an ordinary log\n".repeat(4000); // ~200 KiB
      writeFileSync(file, "00000000001p[CPU0  ] >>PANIC<< an old panic\n" + filler + exitLog);
      expect(readLogPanic(file, 0)).toBe(SS_ASSERTION);
      const size = readFileSync(file).length;
      expect(readLogPanic(file, size)).toBeUndefined();
      writeFileSync(file, "00000000001p[CPU0  ] >>PANIC<< first\n00000000002p[CPU0  ] >>PANIC<< second\n");
      expect(readLogPanic(file, 0)).toBe("first");
      expect(readLogPanic(join(dir, "missing.log"), 0)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the debugger hands a closed connection to the engine's explanation", async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const explained = new EngineError("unsupported-state", "bochs: sregs.ss: explained");
    let seen: EngineError | undefined;
    const debuggerClient = new BochsDebugger(new ByteStream({ input, output }, "bochs"), 1000, async (e) => {
      seen = e;
      return explained;
    });
    const step = debuggerClient.command("s");
    input.end("Next at t=1\n");
    await expect(step).rejects.toBe(explained);
    expect(seen?.kind).toBe("crash");
    expect(seen?.message).toMatch(/connection closed while waiting for the output of "s"/);
    // A command written after the close is explained too.
    await expect(debuggerClient.command("r")).rejects.toBe(explained);
    // Without an explanation the debugger reports the close as it was.
    const plainInput = new PassThrough();
    const plain = new BochsDebugger(new ByteStream({ input: plainInput, output: new PassThrough() }, "bochs"), 1000);
    const pending = plain.command("s");
    plainInput.end();
    await expect(pending).rejects.toMatchObject({ kind: "crash", message: expect.stringMatching(/connection closed/) });
  });
});
