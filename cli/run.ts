// `ringspec run FILE`: run a state or vector file and report the final state and the stop reason.
import { writeFileSync } from "node:fs";
import { parseArgs, runSettings, RUN_OPTIONS, DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_SECONDS, UsageError } from "./args.ts";
import { loadDocument, InputError, oneLine } from "./input.ts";
import { BufferedOut, type Io } from "./io.ts";
import { diffStates, describeEvent, stateDocument, stopLine } from "./format.ts";
import { bitnessOf, bytesAtRip, describeInstructionAt, disassemble, pageReader, ripLinear } from "./disassemble.ts";
import { ENGINES, ENGINE_FACTORIES, specEngine, type EngineResult, type VectorEngine } from "../conformance/vector-check.ts";
import type { Engine, EngineEvent } from "../contract/engine.ts";
import type { ArchState } from "../contract/state.ts";
import { stateFromMachine, type Machine, type StepResult } from "../spec/index.ts";

export const RUN_HELP = `Usage: ringspec run FILE [options]

Runs a ringspec-state/1 or ringspec-vector/1 file (a vector runs from its initial state, with its
inject events pending; its expected section is not compared: use \`ringspec vectors check\`).

Output: the final state as a ringspec-state/1 document on stdout (it can be run again), and one
line on stderr: "stop: REASON after N steps[: DETAIL]; at ADDRESS: INSTRUCTION". REASON is hlt,
shutdown or limit (the run finished), or unsupported, fault or timeout (the engine could not go on).

Options:
  --profile intel|amd   vendor behaviour (default: the file's profile, else intel)
  --max-steps N         step limit (default: a vector's limits.max_steps, else ${DEFAULT_MAX_STEPS.toLocaleString("en-US")};
                        given explicitly, it overrides the vector's limit)
  --timeout SECONDS     wall-clock limit for the run (default ${DEFAULT_TIMEOUT_SECONDS})
  --engine spec|impl    the engine to run (default spec, the reference model; impl: the
                        optimized emulator)
  --trace               print every step on stdout instead of the final state: step number,
                        address, disassembly (AT&T syntax), what the step did, and the registers,
                        flags, segment fields, CPU state and memory bytes it changed (new values)
  --out FILE            write the final state document to FILE instead of stdout
  -h, --help            this help

Exit status: 0 the run stopped at hlt, shutdown or limit; 1 unsupported, fault or timeout;
2 bad arguments or an unusable file (one line on stderr naming the file and the bad field).`;

export function runCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, [...RUN_OPTIONS, { name: "trace", value: false }, { name: "out", value: true }], "run");
  if (args.flags.has("help")) {
    io.out(RUN_HELP + "\n");
    return 0;
  }
  const settings = runSettings(args);
  if (args.positionals.length !== 1) throw new UsageError(`run: expected one FILE, got ${args.positionals.length} (see run --help)`);
  const file = args.positionals[0]!;
  const trace = args.flags.has("trace");
  const outFile = args.values.get("out");

  const doc = loadDocument(file);
  const profile = settings.profile ?? doc.profile ?? "intel";
  const maxSteps = settings.maxSteps ?? (doc.kind === "vector" ? doc.vector.limits.max_steps : DEFAULT_MAX_STEPS);

  const buffered = new BufferedOut(io);
  let engine: VectorEngine = ENGINES[settings.engine]!;
  if (trace) {
    let n = 0;
    engine =
      settings.engine === "spec"
        ? specEngine((before, result) => buffered.line(traceLine(++n, before, result)))
        : tracedEngine(ENGINE_FACTORIES[settings.engine]!, (before, event, after) => buffered.line(engineTraceLine(++n, before, event, after)));
  }
  let result: EngineResult;
  try {
    result = engine(doc.state, profile, maxSteps, settings.timeoutMs);
  } finally {
    buffered.flush();
  }

  const document = stateDocument(result.state, profile);
  if (outFile !== undefined) {
    try {
      writeFileSync(outFile, document);
    } catch (e) {
      throw new InputError(`--out ${outFile}: ${oneLine((e as Error).message)}`);
    }
  } else if (!trace) io.out(document);
  const at = describeInstructionAt(result.state, pageReader(result.state.memory));
  io.err(stopLine(result.exit, result.steps, at, result.detail));
  return result.exit === "hlt" || result.exit === "shutdown" || result.exit === "limit" ? 0 : 1;
}

/**
 * Any Engine, traced: one step at a time through the Engine interface, each step's changes found
 * by comparing the states before and after it (so a trace of impl/ reads like one of spec/).
 */
function tracedEngine(create: () => Engine, onStep: (before: ArchState, event: EngineEvent, after: ArchState) => void): VectorEngine {
  return (state, profile, maxSteps, timeoutMs) => {
    const engine = create();
    engine.load(state, profile);
    const deadline = Date.now() + timeoutMs;
    for (let steps = 0; ; steps++) {
      // run(0) reports hlt or shutdown when the machine cannot step again, without stepping.
      const idle = engine.run(0);
      if (idle.reason !== "limit") return { state: engine.state(), exit: idle.reason, steps };
      if (steps >= maxSteps) return { state: engine.state(), exit: "limit", steps };
      if (Date.now() > deadline) return { state: engine.state(), exit: "timeout", steps, detail: `no stop within ${timeoutMs / 1000} s` };
      const before = engine.state();
      const event = engine.step();
      const after = engine.state();
      onStep(before, event, after);
      if (event.kind === "unsupported" || event.kind === "memory-limit")
        return { state: after, exit: event.kind, steps, detail: event.reason };
    }
  };
}

/** The trace line of an Engine step (same layout as traceLine). */
export function engineTraceLine(n: number, before: ArchState, event: EngineEvent, after: ArchState): string {
  const linear = ripLinear(before);
  let text: string;
  let sequential: bigint | undefined;
  // Events taken at a boundary: NMI, external interrupts, and the single-step trap that was due.
  const boundary =
    event.kind === "delivered" &&
    (event.source === "nmi" || event.source === "external" || (event.vector === 1 && before.cpu.pendingDebugTrap));
  if (boundary) text = "(event at instruction boundary)";
  else if (before.cpu.halted || before.cpu.shutdown) text = "(halted)";
  else {
    const read = pageReader(before.memory);
    const bytes = bytesAtRip(before, read);
    const bitness = bitnessOf(before);
    const d = bytes.length === 0 ? { text: "(not mapped)", length: 0 } : disassemble(bytes, bitness, linear);
    text = d.text;
    if (d.length > 0) sequential = (before.rip + BigInt(d.length)) & (bitness === 64 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn);
  }
  const changes = diffStates(before, after, sequential);
  return `${n}  0x${linear.toString(16)}  ${text}  [${describeEvent(event)}]${changes.length === 0 ? "" : "  " + changes.join(" ")}`;
}

/** `5  0x10004  syscall  [retired]  rcx=0x10006 r11=0x202 rip=0x11000 cs.selector=0x8 ...` */
export function traceLine(n: number, before: Machine, result: StepResult): string {
  const event = result.event;
  const linear = ripLinear(before);
  let text: string;
  let sequential: bigint | undefined;
  if (event.kind === "delivered" && event.instruction === undefined) text = "(event at instruction boundary)";
  else if (before.cpu.halted || before.cpu.shutdown) text = "(halted)";
  else {
    const bytes =
      "instruction" in event && event.instruction !== undefined
        ? event.instruction.bytes
        : bytesAtRip(before, (a) => before.memory.readByte(a));
    const bitness = bitnessOf(before);
    const d = bytes.length === 0 ? { text: "(not mapped)", length: 0 } : disassemble(bytes, bitness, linear);
    text = d.text;
    if (d.length > 0) sequential = (before.rip + BigInt(d.length)) & (bitness === 64 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn);
  }
  const changes = diffStates(stateFromMachine(before), stateFromMachine(result.state), sequential);
  return `${n}  0x${linear.toString(16)}  ${text}  [${describeEvent(event)}]${changes.length === 0 ? "" : "  " + changes.join(" ")}`;
}
