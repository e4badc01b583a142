// The JSON-lines engine protocol (`ringspec-engine/1`): how ringspec drives an engine in another
// process, written in any language. One request per line on the engine's stdin, one answer per
// line on its stdout, in order; the engine logs to stderr. The requests mirror the AsyncEngine
// interface (contract/engine.ts): hello, load, step, steps, run, state, raise, touched. An engine
// that says `step_state` in its hello also answers `step` with `{"state": true}`: the step, then
// what `touched` and `state` would answer, in one exchange instead of three; one that also says
// `steps_state` answers `steps` with `{"n": N, "state": true}`: that for each of up to N steps (a
// lockstep without raises asks for its steps in one exchange). Every
// message, both ways, is validated here with zod; `ringspec schema --protocol` prints the JSON
// Schema generated from these schemas (committed as engines/process/protocol.schema.json), and
// docs/protocol.md describes it for emulator authors.
import { z } from "zod";
import { StateJson, ProfileNameSchema, SegmentJson, TableRegisterJson, RegsJson, SregsJson, MsrsJson, MemoryRegionJson, CpuJson, HexBytes as MemoryBytes, HEX_BYTES_PATTERN } from "../../contract/schema.ts";
import { bytesToHex, hex, hexToBytes } from "../../contract/hex.ts";
import { stateFromJson, stateToJson, type ArchState } from "../../contract/state.ts";
import type { EngineCapabilities, EngineEvent, EngineStop, PhysicalRange, RaiseRequest, StepInstruction } from "../../contract/engine.ts";
import type { ProfileName } from "../../contract/profile.ts";

export const PROTOCOL_VERSION = "ringspec-engine/1";

/** A 64-bit value as the state format writes it ("0x" and 1 to 16 hex digits). */
const Hex64 = z.string().regex(/^0x[0-9a-fA-F]{1,16}$/, { message: 'expected "0x" followed by 1 to 16 hex digits' });
const HexBytes = z.string().regex(/^([0-9a-fA-F]{2})*$/, { message: "expected hex bytes, two digits a byte" }).max(64);
const Vector = z.number().int().min(0).max(255);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

// ------------------------------------------------------------------------------------------------
// Values

/** The instruction a step executed or attempted, as the engine fetched it (StepInstruction). */
export const InstructionJson = z.strictObject({
  bytes: HexBytes,
  length: z.number().int().min(0).max(15),
});

const eventCommon = {
  rip: Hex64,
  /** Present for an instruction step, absent for an event taken at a boundary and an idle CPU. */
  instruction: InstructionJson.optional(),
  /** Rule IDs the step exercised, in order (engines that report rules). */
  rules: z.array(z.string().max(100)).max(10_000).optional(),
};

/** What one step did (EngineEvent). */
export const EventJson = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("retired"), ...eventCommon }),
  z.strictObject({
    kind: z.literal("delivered"),
    ...eventCommon,
    vector: Vector,
    error_code: z.number().int().min(0).max(0xffffffff).nullable(),
    source: z.enum(["exception", "software", "external", "nmi"]),
  }),
  z.strictObject({ kind: z.literal("halted"), ...eventCommon }),
  z.strictObject({ kind: z.literal("shutdown"), ...eventCommon }),
  z.strictObject({
    kind: z.literal("io"),
    ...eventCommon,
    direction: z.enum(["in", "out"]),
    port: z.number().int().min(0).max(0xffff),
    size: z.union([z.literal(1), z.literal(2), z.literal(4)]),
    value: Hex64,
  }),
  z.strictObject({ kind: z.literal("unsupported"), ...eventCommon, bytes: HexBytes, reason: z.string().max(1000) }),
  z.strictObject({ kind: z.literal("memory-limit"), ...eventCommon, reason: z.string().max(1000) }),
  /** The machine stopped at a write to the exit port (docs/devices.md); `value` the exit value. */
  z.strictObject({ kind: z.literal("exited"), ...eventCommon, value: z.number().int().min(0).max(0xffffffff) }),
]);

/** Why a run stopped (EngineStop; `timeout` and `stopped` come from ringspec's runner, never from
 *  an engine). */
export const StopJson = z.strictObject({
  reason: z.enum(["hlt", "shutdown", "limit", "exit", "unsupported", "memory-limit"]),
  steps: Count,
  /** For `unsupported` and `memory-limit`: the event that stopped the run. */
  event: EventJson.optional(),
  /** For `exit`: the value written to the exit port. */
  exit_value: z.number().int().min(0).max(0xffffffff).optional(),
});

/** Physical bytes [start, end). */
export const RangeJson = z.strictObject({ start: Hex64, end: Hex64 });

/** What the engine can do (EngineCapabilities), from its `hello` answer. */
export const CapabilitiesJson = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  /** A name for reports: "my-emulator 1.2 (tcg)". */
  name: z.string().min(1).max(200),
  profiles: z.array(ProfileNameSchema).min(1).max(2),
  /** `step` is exactly one architectural step (else only whole runs are compared). */
  single_step: z.boolean(),
  /** `raise` can make an IRQ or NMI pending. */
  raise: z.boolean(),
  /** `touched` reports the physical ranges written since `load`. */
  touched: z.boolean(),
  /** State fields (as ringspec names them: `sregs.cs.base`, `cpu.shadow`, `memory@0x0`; a trailing
   *  `*` matches a prefix) the engine can neither set nor read: reported as not compared. */
  unobservable: z.array(z.string().min(1).max(200)).max(1000).default([]),
  /** Events carry `rules`. */
  rules: z.boolean().default(false),
  /** `step` with `{"state": true}` answers the touched ranges and the state after the step with
   *  the event (STEP_STATE_RESULT): one exchange a lockstep step instead of step, touched, state.
   *  Optional: ringspec asks only engines that say so (and that say `touched`). */
  step_state: z.boolean().default(false),
  /** `steps` with `{"n": N, "state": true}` answers each step as `step` with `{"state": true}`
   *  does (STEPS_STATE_RESULT): one exchange for up to N lockstep steps. Optional: ringspec asks
   *  only engines that say so (and that say `step_state`). */
  steps_state: z.boolean().default(false),
});

// ------------------------------------------------------------------------------------------------
// Requests (ringspec → engine)

const request = <M extends string, P extends z.ZodType>(method: M, params: P) =>
  z.strictObject({ id: Count, method: z.literal(method), params });
const noParams = z.strictObject({}).optional();

export const RequestJson = z.discriminatedUnion("method", [
  request("hello", z.strictObject({ protocol: z.string().max(100), client: z.string().max(200).optional() })),
  request("load", z.strictObject({ state: StateJson, profile: ProfileNameSchema })),
  /** `state: true` (engines with `step_state` only): STEP_STATE_RESULT instead of RESULTS.step. */
  request("step", z.strictObject({ state: z.boolean().optional() }).optional()),
  /** `state: true` (engines with `steps_state` only): STEPS_STATE_RESULT instead of RESULTS.steps. */
  request("steps", z.strictObject({ n: z.number().int().min(1).max(1_000_000), state: z.boolean().optional() })),
  request("run", z.strictObject({ max_steps: Count })),
  /** `memory`: only these physical ranges (default: every non-zero page). */
  request("state", z.strictObject({ memory: z.array(RangeJson).max(100_000).optional() }).optional()),
  request("raise", z.union([z.strictObject({ irq: Vector }), z.strictObject({ nmi: z.literal(true) })])),
  request("touched", noParams),
]);
export type Request = z.output<typeof RequestJson>;
export type Method = Request["method"];

// ------------------------------------------------------------------------------------------------
// Answers (engine → ringspec): `{"id": N, "result": ...}` or `{"id": N, "error": {"message"}}`.

export const RESULTS = {
  hello: CapabilitiesJson,
  load: z.strictObject({}),
  step: z.strictObject({ event: EventJson }),
  steps: z.strictObject({ events: z.array(EventJson).max(1_000_000) }),
  run: z.strictObject({ stop: StopJson }),
  state: z.strictObject({ state: StateJson }),
  raise: z.strictObject({}),
  touched: z.strictObject({ ranges: z.array(RangeJson).max(1_000_000) }),
} as const satisfies Record<Method, z.ZodType>;

/** The answer to `step` with `{"state": true}`: the event, the physical ranges written since
 *  `load` (as `touched` answers) and the state with the memory of the pages those ranges reach
 *  (as `state` with those ranges answers). */
export const STEP_STATE_RESULT = z.strictObject({
  event: EventJson,
  touched: z.array(RangeJson).max(1_000_000),
  state: StateJson,
});

/** The answer to `steps` with `{"n": N, "state": true}`: for each step taken, in order, what `step`
 *  with `{"state": true}` would have answered. At least one step and at most N; the engine may
 *  stop early (`ringspec serve` stops after an event that ends a run, and after a step taken with
 *  the CPU halted and nothing to wake it). */
export const STEPS_STATE_RESULT = z.strictObject({
  steps: z.array(STEP_STATE_RESULT).min(1).max(1_000_000),
});

export const ErrorJson = z.strictObject({ message: z.string().max(10_000) });

/** The envelope of an answer; `result` is checked against RESULTS[method] by the caller, which
 *  knows which request it answers. */
export const ResponseJson = z.union([
  z.strictObject({ id: Count, result: z.unknown() }),
  z.strictObject({ id: Count, error: ErrorJson }),
]);

// ------------------------------------------------------------------------------------------------
// Conversions between the contract's values and the protocol's JSON

export type EventJsonOut = z.output<typeof EventJson>;

function instructionToJson(i: StepInstruction | undefined) {
  return i === undefined ? {} : { instruction: { bytes: bytesToHex(i.bytes), length: i.length } };
}

export function eventToJson(e: EngineEvent): EventJsonOut {
  const common = { rip: hex(e.rip), ...instructionToJson(e.instruction), ...(e.rules === undefined ? {} : { rules: [...e.rules] }) };
  switch (e.kind) {
    case "retired":
    case "halted":
    case "shutdown":
      return { kind: e.kind, ...common };
    case "delivered":
      return { kind: "delivered", ...common, vector: e.vector, error_code: e.errorCode ?? null, source: e.source };
    case "io":
      return { kind: "io", ...common, direction: e.direction, port: e.port, size: e.size, value: hex(e.value) };
    case "unsupported":
      return { kind: "unsupported", ...common, bytes: bytesToHex(e.bytes), reason: e.reason };
    case "memory-limit":
      return { kind: "memory-limit", ...common, reason: e.reason };
    case "exited":
      return { kind: "exited", ...common, value: e.value };
  }
}

export function eventFromJson(j: EventJsonOut): EngineEvent {
  const rip = BigInt(j.rip);
  const extra = {
    ...(j.instruction === undefined ? {} : { instruction: { bytes: hexToBytes(j.instruction.bytes), length: j.instruction.length } }),
    ...(j.rules === undefined ? {} : { rules: j.rules }),
  };
  switch (j.kind) {
    case "retired":
    case "halted":
    case "shutdown":
      return { kind: j.kind, rip, ...extra };
    case "delivered":
      return { kind: "delivered", rip, vector: j.vector, errorCode: j.error_code ?? undefined, source: j.source, ...extra };
    case "io":
      return { kind: "io", rip, direction: j.direction, port: j.port, size: j.size, value: BigInt(j.value) & 0xffff_ffffn, ...extra };
    case "unsupported":
      return { kind: "unsupported", rip, bytes: hexToBytes(j.bytes), reason: j.reason, ...extra };
    case "memory-limit":
      return { kind: "memory-limit", rip, reason: j.reason, ...extra };
    case "exited":
      return { kind: "exited", rip, value: j.value, ...extra };
  }
}

export function stopToJson(s: EngineStop): z.output<typeof StopJson> {
  if (s.reason === "timeout" || s.reason === "stopped") throw new Error(`an engine's run never stops with ${s.reason}`);
  return {
    reason: s.reason,
    steps: s.steps,
    ...(s.event === undefined ? {} : { event: eventToJson(s.event) }),
    ...(s.exitValue === undefined ? {} : { exit_value: s.exitValue }),
  };
}

export function stopFromJson(j: z.output<typeof StopJson>): EngineStop {
  const event = j.event === undefined ? undefined : eventFromJson(j.event);
  if ((j.reason === "unsupported" || j.reason === "memory-limit") && event?.kind === j.reason) return { reason: j.reason, steps: j.steps, event };
  if (j.reason === "exit") return { reason: "exit", steps: j.steps, ...(j.exit_value === undefined ? {} : { exitValue: j.exit_value }) };
  return { reason: j.reason, steps: j.steps };
}

export function rangeToJson(r: PhysicalRange): z.output<typeof RangeJson> {
  return { start: hex(r.start), end: hex(r.end) };
}

export function rangeFromJson(j: z.output<typeof RangeJson>): PhysicalRange {
  return { start: BigInt(j.start), end: BigInt(j.end) };
}

/** A state as the protocol sends it: the state format's shape (contract/schema.ts StateJson). */
export function stateToProtocol(s: ArchState) {
  return stateToJson(s);
}

/** A validated protocol state. FS_BASE/GS_BASE must agree with the segment bases. */
export function stateFromProtocol(j: z.output<typeof StateJson>): ArchState {
  // Compared by value: the fields are validated hex text (contract/schema.ts Hex64Text).
  if (BigInt(j.msrs.FS_BASE) !== BigInt(j.sregs.fs.base)) throw new Error("state.msrs.FS_BASE differs from state.sregs.fs.base");
  if (BigInt(j.msrs.GS_BASE) !== BigInt(j.sregs.gs.base)) throw new Error("state.msrs.GS_BASE differs from state.sregs.gs.base");
  return stateFromJson(j);
}

export function capabilitiesFromJson(j: z.output<typeof CapabilitiesJson>): EngineCapabilities {
  return {
    name: j.name,
    profiles: j.profiles as readonly ProfileName[],
    singleStep: j.single_step,
    raise: j.raise,
    touched: j.touched,
    unobservable: j.unobservable,
    rules: j.rules,
  };
}

/** A hello answer; `stepState`: the engine answers `step` and `steps` with `{"state": true}`
 *  (`step_state` and `steps_state`). */
export function capabilitiesToJson(c: EngineCapabilities, stepState = false): z.input<typeof CapabilitiesJson> {
  return {
    protocol: PROTOCOL_VERSION,
    name: c.name,
    profiles: [...c.profiles],
    single_step: c.singleStep,
    raise: c.raise,
    touched: c.touched,
    unobservable: [...c.unobservable],
    rules: c.rules === true,
    ...(stepState ? { step_state: true, steps_state: true } : {}),
  };
}

export function raiseToJson(r: RaiseRequest): { irq: number } | { nmi: true } {
  return "irq" in r ? { irq: r.irq } : { nmi: true };
}

/** The first problem of a failed validation, with its JSON path (`params.state.regs.rax: ...`). */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  let path = "";
  for (const key of issue.path) path += typeof key === "number" ? `[${key}]` : path === "" ? String(key) : `.${String(key)}`;
  if (issue.code === "unrecognized_keys") return `${path === "" ? "" : path + "."}${issue.keys[0] ?? "?"}: unknown field`;
  return `${path === "" ? "$" : path}: ${issue.message}`;
}

// ------------------------------------------------------------------------------------------------
// The JSON Schema (draft 2020-12) of the protocol's messages

export function protocolJsonSchema(): Record<string, unknown> {
  const metadata = z.registry<{ id?: string; title?: string; description?: string; pattern?: string }>();
  metadata.add(SegmentJson, { id: "segment", description: "A segment register: selector and hidden part" });
  metadata.add(TableRegisterJson, { id: "tableRegister" });
  metadata.add(RegsJson, { id: "regs" });
  metadata.add(SregsJson, { id: "sregs" });
  metadata.add(MsrsJson, { id: "msrs", description: "FS_BASE and GS_BASE must equal sregs.fs.base and sregs.gs.base" });
  metadata.add(MemoryBytes, { pattern: HEX_BYTES_PATTERN });
  metadata.add(MemoryRegionJson, { id: "memoryRegion", description: "Bytes at a physical address, two hex digits a byte" });
  metadata.add(CpuJson, { id: "cpu", description: "Run-time CPU state between instruction boundaries" });
  metadata.add(StateJson, { id: "state", description: "A machine state, as in a ringspec-state/1 file (without format and profile)" });
  metadata.add(EventJson, { id: "event", description: "What one step did" });
  metadata.add(StopJson, { id: "stop", description: "Why a run stopped" });
  metadata.add(RangeJson, { id: "range", description: "Physical bytes [start, end)" });
  metadata.add(InstructionJson, { id: "instruction", description: "The bytes the step fetched" });
  const answers = Object.entries(RESULTS).map(([method, result]) => {
    const answer = z.strictObject({ id: Count, result });
    metadata.add(answer, { title: `answer to ${method}` });
    return answer;
  });
  const stepState = z.strictObject({ id: Count, result: STEP_STATE_RESULT });
  metadata.add(stepState, { title: 'answer to step with {"state": true}' });
  answers.push(stepState);
  const stepsState = z.strictObject({ id: Count, result: STEPS_STATE_RESULT });
  metadata.add(stepsState, { title: 'answer to steps with {"n": N, "state": true}' });
  answers.push(stepsState);
  const error = z.strictObject({ id: Count, error: ErrorJson });
  metadata.add(error, { title: "error answer" });
  const root = z.strictObject({ request: RequestJson, answer: z.union([...answers, error]) });
  metadata.add(root, {
    title: PROTOCOL_VERSION,
    description:
      "The ringspec engine protocol: one JSON object per line. `request` is what ringspec writes to the engine's stdin; `answer` what the engine writes back on stdout, one per request, in order, with the request's id (docs/protocol.md).",
  });
  return z.toJSONSchema(root, { io: "input", target: "draft-2020-12", metadata, unrepresentable: "throw" }) as Record<string, unknown>;
}

export function protocolJsonSchemaText(): string {
  return JSON.stringify(protocolJsonSchema(), null, 2) + "\n";
}
