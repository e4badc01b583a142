// The JSON-lines engine protocol: the reference server (in-process over streams, and as a child),
// the client's validation, and its robustness against engines that crash, hang, print garbage,
// answer out of order or stop mid-answer.
import { PassThrough } from "node:stream";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { ProcessEngine, liveProcessEngines } from "../../engines/process/engine.ts";
import { serveEngine, servedCapabilities } from "../../engines/process/server.ts";
import { EventJson, RequestJson, eventFromJson, eventToJson, protocolJsonSchemaText, stateToProtocol } from "../../engines/process/protocol.ts";
import { EngineError } from "../../engines/host/errors.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { compareStates } from "../../contract/compare.ts";
import type { EngineEvent } from "../../contract/engine.ts";
import { runAsyncEngine } from "../../engines/runner.ts";
import { asAsync } from "../../contract/async.ts";
import { lockstepCase } from "../../conformance/campaign/lockstep-case.ts";
import { kernelMachine, kernelState, userState, withCode } from "../helpers/fixture.ts";
import { stateFromMachine } from "../../spec/machine/machine.ts";
import { unionRanges } from "../../contract/compare.ts";
import { parseDocument } from "../../contract/load.ts";
import { vectorPath } from "../helpers/fixture.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURE = fileURLToPath(new URL("./fixtures/misbehaving-engine.sh", import.meta.url));
const misbehaving = (mode: string) => `bash ${FIXTURE} ${mode}`;

/**
 * The requests `tee` logged in front of an engine, up to and including the first one `isSentinel`
 * picks. tee passes a request on before it writes its log, so the engine's answer can come back
 * before the log has the request (on a busy core the woken engine runs first): wait for the log,
 * not on it. A test sends a sentinel request after the ones it checks and asserts where the
 * sentinel stands: tee logs in order, so every request sent before it is in the log by then, and a
 * request too many is there to be seen however late tee wrote it.
 */
async function loggedRequestsThrough(log: string, isSentinel: (r: { method: string }, index: number) => boolean): Promise<{ method: string; params?: unknown }[]> {
  const requests = () => {
    const text = readFileSync(log, "utf8");
    return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { method: string; params?: unknown });
  };
  const through = () => {
    const all = requests();
    const i = all.findIndex(isSentinel);
    return i < 0 ? undefined : all.slice(0, i + 1);
  };
  for (const deadline = Date.now() + 20_000; through() === undefined && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
  return through() ?? requests();
}

/** A server on streams, and a way to send it one request and read the answer. */
function inProcessServer(engine: ImplEngine = new ImplEngine()) {
  const input = new PassThrough();
  const output = new PassThrough();
  const served = serveEngine(engine, servedCapabilities("impl", false), input, output);
  const lines = createInterface({ input: output })[Symbol.asyncIterator]();
  const ask = async (request: unknown): Promise<Record<string, unknown>> => {
    input.write((typeof request === "string" ? request : JSON.stringify(request)) + "\n");
    const next = await lines.next();
    return JSON.parse(next.value as string) as Record<string, unknown>;
  };
  return { ask, close: async () => (input.end(), await served) };
}

afterAll(() => {
  expect(liveProcessEngines()).toBe(0);
});

describe("the engine protocol's messages", () => {
  it("events convert to JSON and back unchanged (every kind)", () => {
    const events: EngineEvent[] = [
      { kind: "retired", rip: 0x200000n, instruction: { bytes: Uint8Array.of(0x0f, 0x05), length: 2 } },
      { kind: "delivered", rip: 0x10n, vector: 14, errorCode: 6, source: "exception", instruction: { bytes: Uint8Array.of(), length: 0 } },
      { kind: "delivered", rip: 0x10n, vector: 32, errorCode: undefined, source: "external" },
      { kind: "halted", rip: 0x11n },
      { kind: "shutdown", rip: 0x12n },
      { kind: "io", rip: 0x13n, direction: "out", port: 0xe9, size: 1, value: 0x41n, instruction: { bytes: Uint8Array.of(0xe6, 0xe9), length: 2 } },
      { kind: "unsupported", rip: 0x14n, bytes: Uint8Array.of(0x0f, 0xa2), reason: "CPUID" },
      { kind: "memory-limit", rip: 0x15n, reason: "too many pages" },
    ];
    for (const e of events) {
      const json = JSON.parse(JSON.stringify(eventToJson(e)));
      expect(EventJson.parse(json)).toEqual(json);
      expect(eventFromJson(EventJson.parse(json))).toEqual(e);
    }
  });

  it("requests are validated field by field", () => {
    expect(RequestJson.safeParse({ id: 1, method: "steps", params: { n: 0 } }).success).toBe(false);
    expect(RequestJson.safeParse({ id: 1, method: "fly" }).success).toBe(false);
    expect(RequestJson.safeParse({ id: 1, method: "raise", params: { irq: 300 } }).success).toBe(false);
    expect(RequestJson.safeParse({ id: 1, method: "step", params: { state: true } }).success).toBe(true);
    expect(RequestJson.safeParse({ id: 1, method: "step", params: { state: "yes" } }).success).toBe(false);
    expect(RequestJson.safeParse({ id: 1, method: "step", params: { state: true, memory: [] } }).success).toBe(false);
    expect(RequestJson.safeParse({ id: 1, method: "load", params: { state: stateToProtocol(kernelState()), profile: "intel" } }).success).toBe(true);
  });

  it("the committed engines/process/protocol.schema.json equals the generated one (regenerate: node cli/bin.js schema --protocol > engines/process/protocol.schema.json)", () => {
    expect(readFileSync(`${ROOT}engines/process/protocol.schema.json`, "utf8")).toBe(protocolJsonSchemaText());
  });
});

/** A kernel state whose steps write two pages: push rax; push rbx; mov [0x30000], eax; hlt. */
const twoPageWriter = () => stateFromMachine(withCode(kernelMachine(), [0x50, 0x53, 0x89, 0x04, 0x25, 0x00, 0x00, 0x03, 0x00, 0xf4]));

// The tests of the next two groups each start their own server or engine process and wait on it
// (timeouts, exits, start-up): they run side by side.
describe.concurrent("the reference server", () => {
  it("answers hello with its capabilities and runs a state like the engine itself", async () => {
    const s = inProcessServer();
    const hello = await s.ask({ id: 1, method: "hello", params: { protocol: "ringspec-engine/1" } });
    expect(hello).toMatchObject({ id: 1, result: { protocol: "ringspec-engine/1", name: "impl", single_step: true, touched: true } });
    const doc = parseDocument(readFileSync(vectorPath("syscall-sysret-roundtrip"), "utf8"));
    expect(await s.ask({ id: 2, method: "load", params: { state: stateToProtocol(doc.state), profile: "intel" } })).toEqual({ id: 2, result: {} });
    const step = await s.ask({ id: 3, method: "step" });
    expect(step).toMatchObject({ id: 3, result: { event: { kind: "retired", rip: "0x200000", instruction: { bytes: "0f05", length: 2 } } } });
    const steps = (await s.ask({ id: 4, method: "steps", params: { n: 3 } })) as { result: { events: unknown[] } };
    expect(steps.result.events).toHaveLength(3);
    expect(await s.ask({ id: 5, method: "run", params: { max_steps: 10 } })).toEqual({ id: 5, result: { stop: { reason: "limit", steps: 10 } } });
    const touched = (await s.ask({ id: 6, method: "touched" })) as { result: { ranges: unknown[] } };
    expect(touched.result.ranges.length).toBeGreaterThan(0);
    await s.close();
  });

  it("refuses bad requests with an error naming the field, and goes on", async () => {
    const s = inProcessServer();
    expect(await s.ask("{not json")).toMatchObject({ id: 0, error: { message: expect.stringContaining("not valid JSON") } });
    expect(await s.ask({ id: 7, method: "step" })).toMatchObject({ id: 7, error: { message: "step: load a state first" } });
    const state = stateToProtocol(userState()) as { regs: Record<string, string> };
    state.regs.rax = "0xnope";
    expect(await s.ask({ id: 8, method: "load", params: { state, profile: "intel" } })).toMatchObject({ id: 8, error: { message: expect.stringMatching(/^params\.state\.regs\.rax: /) } });
    expect(await s.ask({ id: 9, method: "hello", params: { protocol: "ringspec-engine/9" } })).toMatchObject({ id: 9, error: { message: expect.stringContaining("ringspec-engine/1") } });
    expect(await s.ask({ id: 10, method: "hello", params: { protocol: "ringspec-engine/1" } })).toMatchObject({ id: 10, result: { name: "impl" } });
    await s.close();
  });

  it("answers step with {state: true}: the event, then what touched and state would answer, in one line", async () => {
    const [one, three] = [inProcessServer(), inProcessServer()];
    const hello = { method: "hello", params: { protocol: "ringspec-engine/1" } };
    expect(await one.ask({ id: 1, ...hello })).toMatchObject({ result: { step_state: true, touched: true } });
    await three.ask({ id: 1, ...hello });
    const state = stateToProtocol(twoPageWriter());
    for (const s of [one, three]) await s.ask({ id: 2, method: "load", params: { state, profile: "intel" } });
    const pages = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const id = 3 + 3 * i;
      const batched = (await one.ask({ id, method: "step", params: { state: true } })) as { id: number; result: { event: unknown; touched: { start: string; end: string }[]; state: { memory: { gpa: string }[] } } };
      const step = (await three.ask({ id, method: "step" })) as { result: { event: unknown } };
      const touched = (await three.ask({ id: id + 1, method: "touched" })) as { result: { ranges: { start: string; end: string }[] } };
      const read = (await three.ask({ id: id + 2, method: "state", params: { memory: touched.result.ranges } })) as { result: { state: unknown } };
      expect(batched.id).toBe(id);
      expect(batched.result).toEqual({ event: step.result.event, touched: touched.result.ranges, state: read.result.state });
      for (const r of batched.result.state.memory) pages.add(r.gpa);
    }
    // Only the pages written are in the state (the stack's and 0x30000's), not all of memory.
    expect(pages.size).toBeGreaterThan(0);
    expect(pages.size).toBeLessThan(state.memory.length);
    await one.close();
    await three.close();
  });

  it("answers steps with {n, state: true}: each step as step with {state: true} answers it, the last the idle step after HLT", async () => {
    const [batched, single] = [inProcessServer(), inProcessServer()];
    const hello = { method: "hello", params: { protocol: "ringspec-engine/1" } };
    expect(await batched.ask({ id: 1, ...hello })).toMatchObject({ result: { step_state: true, steps_state: true } });
    await single.ask({ id: 1, ...hello });
    const state = stateToProtocol(twoPageWriter());
    for (const s of [batched, single]) await s.ask({ id: 2, method: "load", params: { state, profile: "intel" } });
    // push, push, mov, hlt, then the halted CPU's idle step: the lockstep's last (it shows that the
    // engine does not step either); no more after it.
    const answer = (await batched.ask({ id: 3, method: "steps", params: { n: 10, state: true } })) as { id: number; result: { steps: { event: { kind: string } }[] } };
    expect(answer.id).toBe(3);
    expect(answer.result.steps.map((s) => s.event.kind)).toEqual(["retired", "retired", "retired", "halted", "halted"]);
    for (const [i, step] of answer.result.steps.entries()) expect((await single.ask({ id: 3 + i, method: "step", params: { state: true } })).result).toEqual(step);
    // At most 64 with state (each state is held until the answer is written), and at most n.
    expect(await batched.ask({ id: 4, method: "steps", params: { n: 65, state: true } })).toEqual({ id: 4, error: { message: "params.n: at most 64 steps with state: true, not 65" } });
    await batched.ask({ id: 4, method: "load", params: { state, profile: "intel" } });
    expect(((await batched.ask({ id: 5, method: "steps", params: { n: 2, state: true } })) as { result: { steps: unknown[] } }).result.steps).toHaveLength(2);
    await batched.close();
    await single.close();
  });

  it.each([{ state: true }, {}])("a step that fails inside a batch (steps %o) does not take the steps before it with it: they are answered, the failure answers the next step request, a load clears it", async (params) => {
    /** impl, failing at its third step after a load. */
    class FailingThirdStep extends ImplEngine {
      taken = 0;
      override load(...args: Parameters<ImplEngine["load"]>): void {
        this.taken = 0;
        super.load(...args);
      }
      override step(): EngineEvent {
        if (++this.taken === 3) throw new Error("the third step broke");
        return super.step();
      }
    }
    const server = inProcessServer(new FailingThirdStep());
    await server.ask({ id: 1, method: "hello", params: { protocol: "ringspec-engine/1" } });
    const state = stateToProtocol(twoPageWriter());
    await server.ask({ id: 2, method: "load", params: { state, profile: "intel" } });
    const answer = (await server.ask({ id: 3, method: "steps", params: { n: 10, ...params } })) as { id: number; result: Record<string, unknown[]> };
    expect(answer.id).toBe(3);
    expect(answer.result[params.state === true ? "steps" : "events"]).toHaveLength(2);
    expect(await server.ask({ id: 4, method: "step" })).toEqual({ id: 4, error: { message: "internal error: the third step broke" } });
    // Answered once: the engine is asked again after it.
    expect(await server.ask({ id: 5, method: "step" })).toMatchObject({ id: 5, result: { event: { kind: "retired" } } });
    // A failure kept from a batch goes with a load; one at a batch's first step fails that request.
    await server.ask({ id: 6, method: "load", params: { state, profile: "intel" } });
    await server.ask({ id: 7, method: "steps", params: { n: 2, ...params } });
    expect(await server.ask({ id: 8, method: "steps", params: { n: 2, ...params } })).toEqual({ id: 8, error: { message: "internal error: the third step broke" } });
    await server.ask({ id: 9, method: "load", params: { state, profile: "intel" } });
    expect(await server.ask({ id: 10, method: "steps", params: { n: 2, ...params } })).toMatchObject({ id: 10, result: {} });
    await server.close();
  });

  it.each([
    ["an engine with step_state: one exchange a step", "", ["step", "step", "step"]],
    ["an engine without step_state: step, touched, state", ` | sed -u 's/,"step_state":true//'`, ["step", "touched", "state", "step", "touched", "state", "step", "touched", "state"]],
  ])("keeps a touched answer until a request that may write: never stale, and asked once a lockstep step (%s)", async (_name, filter, expected) => {
    // The requests the engine gets are logged by tee in front of it (and its hello edited by sed
    // behind it, for an engine that does not answer a step with its state).
    const dir = mkdtempSync(join(tmpdir(), "ringspec-touched-"));
    const log = join(dir, "requests.jsonl");
    const engine = await ProcessEngine.start({ command: `tee ${log} | node ${ROOT}cli/bin.js serve --engine impl${filter}`, cwd: ROOT });
    try {
      const state = twoPageWriter();
      const local = new ImplEngine();
      local.load(state, "intel");
      await engine.load(state, "intel");
      for (let i = 0; i < 3; i++) {
        local.step();
        await engine.step();
        // What a lockstep step asks: the state (touched inside), then touched for the comparison.
        const remote = await engine.state();
        const touched = await engine.touched();
        expect(touched).toEqual(local.touched());
        expect(compareStates(local.state(), remote, { rule: "exact", memory: unionRanges(touched, local.touched()) }).differences).toEqual([]);
      }
      // The sentinel: a second load, which must come right after the checked requests.
      await engine.load(state, "intel");
      const requests = await loggedRequestsThrough(log, (r, i) => i >= 2 && r.method === "load");
      expect(requests.slice(2).map((r) => r.method)).toEqual([...expected, "load"]);
      for (const r of requests.filter((x) => x.method === "step")) expect(r.params).toEqual(expected.length === 3 ? { state: true } : undefined);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("a lockstep without raises gets its steps from one exchange, and the engine refuses other requests until they are taken", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ringspec-ahead-"));
    const log = join(dir, "requests.jsonl");
    const engine = await ProcessEngine.start({ command: `tee ${log} | node ${ROOT}cli/bin.js serve --engine impl`, cwd: ROOT });
    try {
      // Compared with the spec after every step (states, touched pages, events): they agree.
      const built = { state: twoPageWriter(), profile: "intel" as const, maxSteps: 20, raises: [] };
      const spec = asAsync(new SpecEngine(), servedCapabilities("spec", false));
      const verdict = await lockstepCase(spec, engine, built, { every: 1, rule: "exact", timeoutMs: 20_000 });
      expect(verdict).toMatchObject({ kind: "agree", steps: 4, stop: "hlt" });
      // Steps run ahead and not taken: the engine is past them, so anything but load is refused.
      // This load is also the sentinel after the lockstep's requests.
      await engine.load(built.state, "intel");
      expect((await loggedRequestsThrough(log, (r, i) => i >= 3 && r.method === "load")).slice(1)).toEqual([
        { id: 2, method: "load", params: expect.anything() },
        { id: 3, method: "steps", params: { n: 16, state: true } },
        { id: 4, method: "load", params: expect.anything() },
      ]);
      engine.expectSteps(10);
      expect((await engine.step()).kind).toBe("retired");
      await expect(engine.raise({ nmi: true })).rejects.toThrow(/raise while 4 steps run ahead \(expectSteps\) are not taken/);
      await expect(engine.steps(1)).rejects.toThrow(/steps while 4 steps run ahead/);
      expect((await engine.state()).rip).toBe(built.state.rip + 1n);
      await engine.load(built.state, "intel");
      expect((await engine.step()).kind).toBe("retired");
      await engine.load(built.state, "intel"); // the sentinel
      expect((await loggedRequestsThrough(log, (r, i) => i >= 7 && r.method === "load")).slice(3).map((r) => [r.method, r.params])).toEqual([
        ["load", expect.anything()], ["steps", { n: 10, state: true }], ["load", expect.anything()], ["step", { state: true }], ["load", expect.anything()],
      ]);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("as a child process (ringspec serve --engine spec) it agrees with the spec in process", async () => {
    const engine = await ProcessEngine.start({ command: `node ${ROOT}cli/bin.js serve --engine spec`, cwd: ROOT });
    try {
      expect(engine.capabilities).toMatchObject({ name: "spec", singleStep: true, raise: true, touched: true });
      const doc = parseDocument(readFileSync(vectorPath("syscall-sysret-roundtrip"), "utf8"));
      await engine.load(doc.state, "intel");
      const remote = await runAsyncEngine(engine, { maxSteps: 50, timeoutMs: 20_000 });
      const local = new SpecEngine();
      local.load(doc.state, "intel");
      const stop = local.run(50);
      expect(remote.stop).toMatchObject({ reason: stop.reason, steps: stop.steps });
      expect(compareStates(local.state(), remote.state, { rule: "exact", memory: "all" }).differences).toEqual([]);
    } finally {
      await engine.close();
    }
  }, 30_000);
});

describe.concurrent("the client survives a misbehaving engine", () => {
  const cases: [string, EngineError["kind"], RegExp][] = [
    ["crash", "crash", /exited with status 3/],
    ["kill", "crash", /killed by SIGKILL/],
    ["garbage", "protocol", /not a JSON answer: "segmentation fault/],
    ["out-of-order", "protocol", /out of order: expected id \d+ \(step\), got id \d+/],
    ["truncate", "crash", /in the middle of an answer/],
    ["bad-event", "protocol", /step: bad answer: result\.event\.kind: /],
    ["step-state-missing", "protocol", /step: bad answer: result\.touched: /],
    ["step-state-bases", "protocol", /step: bad answer: result\.state\.msrs\.FS_BASE differs from state\.sregs\.fs\.base/],
  ];
  for (const [mode, kind, message] of cases) {
    it(`${mode}: step fails with ${kind} (${message.source}), then every call fails at once`, async () => {
      // They fail on what the engine writes, not on a timeout: the default 10 s only bounds a hang
      // (with 0.3 s, a loaded machine — these cases run side by side — turned out-of-order's late
      // answer into a timeout). "hang" is tested on its own below, on a clock of its own.
      const engine = await ProcessEngine.start({ command: misbehaving(mode) });
      await engine.load(kernelState(), "intel");
      const failure = await engine.step().then(() => null, (e: unknown) => e);
      expect(failure).toBeInstanceOf(EngineError);
      expect((failure as EngineError).kind).toBe(kind);
      expect((failure as EngineError).message).toMatch(message);
      await expect(engine.state()).rejects.toBeInstanceOf(EngineError);
      await engine.close();
    });
  }

  it("an answer and a reason written just before exiting are both read, not lost to the exit", async () => {
    for (let round = 0; round < 5; round++) {
      const engine = await ProcessEngine.start({ command: misbehaving("last-words") });
      await engine.load(kernelState(), "intel");
      expect((await engine.step()).kind).toBe("unsupported");
      await expect(engine.state()).rejects.toThrow(/exited with status 3 \(stderr: emulator: out of guest memory\)/);
      await engine.close();
    }
  });

  it("a steps answer with more steps than asked for is a protocol error", async () => {
    const engine = await ProcessEngine.start({ command: misbehaving("steps-state-too-many") });
    await engine.load(kernelState(), "intel");
    engine.expectSteps(2);
    await expect(engine.step()).rejects.toThrow(/steps: 3 steps for n = 2/);
    await expect(engine.state()).rejects.toBeInstanceOf(EngineError);
    await engine.close();
  });

  it("a bad state in a steps answer is named where it stands (result.steps[i])", async () => {
    const engine = await ProcessEngine.start({ command: misbehaving("steps-state-bases") });
    await engine.load(kernelState(), "intel");
    engine.expectSteps(2);
    await engine.step();
    await expect(engine.step()).rejects.toThrow(/steps: bad answer: result\.steps\[1\]\.state\.msrs\.FS_BASE differs from state\.sregs\.fs\.base/);
    await engine.close();
  });

  it("an error answer fails that call only", async () => {
    const engine = await ProcessEngine.start({ command: misbehaving("refuse") });
    await engine.load(kernelState(), "intel");
    await expect(engine.step()).rejects.toThrow(/the engine answered an error: I do not know how to step/);
    expect((await engine.state()).rip).toBe(kernelState().rip);
    await engine.close();
  });

  it("a command that does not start, or does not say hello, is a start error", async () => {
    const missing = await ProcessEngine.start({ command: "/no/such/emulator --flag" }).then(() => null, (e: unknown) => e);
    expect(missing).toBeInstanceOf(EngineError);
    expect((missing as EngineError).kind).toBe("start");
    const rude = await ProcessEngine.start({ command: misbehaving("bad-start") }).then(() => null, (e: unknown) => e);
    expect((rude as EngineError).kind).toBe("start");
    expect((rude as EngineError).message).toMatch(/no usable hello: not a JSON answer: "Welcome to my emulator!"/);
  });
});

// Not concurrent: it fakes the timers of the whole file while it runs.
describe("the client survives an engine that never answers", () => {
  it("hang: step fails with timeout (step: no answer within 10 s), then every call fails at once", async () => {
    // The engine (bash) starts and answers load in real time, bounded by the generous default
    // 10 s (at load 13 its load once took more than 0.3 s); only the step's timeout is tested,
    // on fake timers, so how busy the machine is cannot move it either way.
    const engine = await ProcessEngine.start({ command: misbehaving("hang") });
    try {
      await engine.load(kernelState(), "intel");
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      let failure: unknown = null;
      const step = engine.step().then(() => "answered", (e: unknown) => (failure = e));
      await vi.advanceTimersByTimeAsync(9_999);
      expect(failure).toBeNull();
      await vi.advanceTimersByTimeAsync(1);
      await step;
      expect(failure).toBeInstanceOf(EngineError);
      expect((failure as EngineError).kind).toBe("timeout");
      expect((failure as EngineError).message).toMatch(/^step: no answer within 10 s/);
      await expect(engine.state()).rejects.toBe(failure);
    } finally {
      vi.useRealTimers();
      await engine.close();
    }
  });
});
