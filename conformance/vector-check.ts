// Engine-agnostic vector runner and comparator (vector README, "Running a vector" 4–5): run a
// vector's `initial` state through an engine and compare every field present in `expected`.
// An engine is one function (`VectorEngine`); the spec adapter is `specEngine`. A second engine
// (impl/) plugs in with one adapter of the same shape, added to `ENGINES`.
import type { ExpectedParsed } from "../contract/schema.ts";
import type { LoadedVector } from "../contract/load.ts";
import type { ArchState, Segment, SegmentName } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import { ImplEngine } from "../impl/engine.ts";
import { SpecEngine } from "../spec/engine.ts";
import type { Engine } from "../contract/engine.ts";
import { GPR_NAMES } from "../contract/schema.ts";
import { bytesToHex, hex, hexToBytes } from "../contract/hex.ts";
import { run, machineFromState, stateFromMachine, profileByName, describeFault } from "../spec/index.ts";
import type { Machine, StepResult, StepEvent } from "../spec/index.ts";

/** Why a run stopped. The first three are the vector exits; the rest mean the engine could not
 *  finish the run (they always fail a vector). */
export type EngineExit = "hlt" | "shutdown" | "limit" | "unsupported" | "fault" | "timeout" | "memory-limit";

export interface EngineResult {
  readonly state: ArchState;
  readonly exit: EngineExit;
  /** Steps taken, when the engine counts them. */
  readonly steps?: number;
  /** One line on why the run stopped, for `unsupported`, `fault` and `timeout`. */
  readonly detail?: string;
}

/** Runs `state` until HLT with nothing to wake it, shutdown, `maxSteps` steps or `timeoutMs`. */
export type VectorEngine = (state: ArchState, profile: ProfileName, maxSteps: number, timeoutMs: number) => EngineResult;

/** One line for a step event that stopped a run. */
export function describeStopEvent(event: StepEvent | undefined): string | undefined {
  if (event === undefined) return undefined;
  switch (event.kind) {
    case "unsupported":
      return `${event.reason} (bytes ${bytesToHex(event.bytes) || "none"})`;
    case "fault":
      return `${describeFault(event.fault)} not delivered`;
    default:
      return undefined;
  }
}

/** The reference model as an engine. `onStep` sees every step (traces). */
export function specEngine(onStep?: (before: Machine, result: StepResult) => void): VectorEngine {
  return (state, profile, maxSteps, timeoutMs) => {
    const result = run(machineFromState(state), {
      profile: profileByName(profile),
      maxSteps,
      timeoutMs,
      ...(onStep === undefined ? {} : { onStep }),
    });
    const detail =
      result.reason === "timeout"
        ? `no stop within ${timeoutMs / 1000} s`
        : result.reason === "unsupported" || result.reason === "fault"
          ? describeStopEvent(result.last)
          : undefined;
    return {
      state: stateFromMachine(result.state),
      exit: result.reason,
      steps: result.steps,
      ...(detail === undefined ? {} : { detail }),
    };
  };
}

/** Steps an `Engine` runs between two looks at the clock. */
const ENGINE_CHUNK = 1 << 16;

/**
 * Any `Engine` (contract/engine.ts) as a VectorEngine: loads the state, runs in chunks of
 * ENGINE_CHUNK steps so that the timeout is checked between them, and reads the final state.
 * A new engine comes from `create` for every run.
 */
export function fromEngine(create: () => Engine): VectorEngine {
  return (state, profile, maxSteps, timeoutMs) => {
    const engine = create();
    engine.load(state, profile);
    const deadline = Date.now() + timeoutMs;
    let steps = 0;
    for (;;) {
      const chunk = Math.min(maxSteps - steps, ENGINE_CHUNK);
      const stop = engine.run(chunk);
      steps += stop.steps;
      if (stop.reason !== "limit") {
        const detail = stop.event?.kind === "unsupported" ? describeStopEvent(stop.event) : stop.event?.reason;
        return { state: engine.state(), exit: stop.reason, steps, ...(detail === undefined ? {} : { detail }) };
      }
      // An engine that stops at its limit without stepping cannot make progress: report the limit.
      if (steps >= maxSteps || stop.steps === 0) return { state: engine.state(), exit: "limit", steps };
      if (Date.now() > deadline) return { state: engine.state(), exit: "timeout", steps, detail: `no stop within ${timeoutMs / 1000} s` };
    }
  };
}

/** Engine implementations reachable through the Engine interface, by `--engine` name. */
export const ENGINE_FACTORIES: Readonly<Record<string, () => Engine>> = { spec: () => new SpecEngine(), impl: () => new ImplEngine() };

/** Engines selectable with `--engine`: the reference model (run directly, so traces see its
 *  StepEvents) and the optimized emulator. */
export const ENGINES: Readonly<Record<string, VectorEngine>> = { spec: specEngine(), impl: fromEngine(ENGINE_FACTORIES.impl!) };
export const ENGINE_NAMES: readonly string[] = Object.keys(ENGINES);

export interface Mismatch {
  /** `exit`, `regs.rax`, `sregs.cs.dpl`, `msrs.FS_BASE`, `memory[2]@0x1ffd8`. */
  readonly field: string;
  readonly expected: string;
  readonly got: string;
}

const SEGMENT_FIELDS = ["selector", "base", "limit", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"] as const;
/** Data segment registers: with a null selector only the selector is compared (vector README,
 *  "Fields"). SS is one too: the NULL SS that inter-privilege delivery loads (DELIVER-17) has an
 *  implementation-specific hidden part, and 64-bit mode does not use it. */
const DATA_SEGMENTS: ReadonlySet<string> = new Set(["ss", "ds", "es", "fs", "gs"]);
const FORMAT_SEGMENTS: readonly (readonly [string, SegmentName])[] = [
  ["cs", "cs"], ["ds", "ds"], ["es", "es"], ["fs", "fs"], ["gs", "gs"], ["ss", "ss"], ["tr", "tr"], ["ldt", "ldtr"],
];
const CONTROL = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer"] as const;

function isNullSelector(selector: number | bigint): boolean {
  return (BigInt(selector) & ~3n) === 0n;
}

function segmentValue(s: Segment, field: (typeof SEGMENT_FIELDS)[number]): bigint | number {
  return s[field];
}

function show(v: bigint | number, asHex: boolean): string {
  return asHex ? hex(v) : String(v);
}

function readPhysical(pages: ReadonlyMap<number, Uint8Array>, address: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const a = address + BigInt(i);
    out[i] = pages.get(Number(a >> 12n))?.[Number(a & 0xfffn)] ?? 0;
  }
  return out;
}

/** Differences between `expected` (all fields present in it, except `exit`) and a final state. */
export function compareExpected(expected: ExpectedParsed, state: ArchState): Mismatch[] {
  const out: Mismatch[] = [];
  const check = (field: string, want: bigint | number | undefined, got: bigint | number, asHex = true) => {
    if (want === undefined) return;
    if (BigInt(want) !== BigInt(got)) out.push({ field, expected: show(want, asHex), got: show(got, asHex) });
  };
  const regs = expected.regs ?? {};
  GPR_NAMES.forEach((name, i) => check(`regs.${name}`, regs[name], state.gpr[i]!));
  check("regs.rip", regs.rip, state.rip);
  check("regs.rflags", regs.rflags, state.rflags);

  const sregs = expected.sregs ?? {};
  for (const [jsonName, stateName] of FORMAT_SEGMENTS) {
    const want = sregs[jsonName as keyof typeof sregs] as Partial<Record<(typeof SEGMENT_FIELDS)[number], bigint | number>> | undefined;
    if (want === undefined) continue;
    const got = state[stateName];
    const nullData =
      DATA_SEGMENTS.has(jsonName) && (isNullSelector(got.selector) || (want.selector !== undefined && isNullSelector(want.selector)));
    for (const field of SEGMENT_FIELDS) {
      if (nullData && field !== "selector") continue;
      check(`sregs.${jsonName}.${field}`, want[field], segmentValue(got, field), field === "selector" || field === "base" || field === "limit");
    }
  }
  for (const [jsonName, table] of [["gdt", state.gdtr], ["idt", state.idtr]] as const) {
    const want = sregs[jsonName];
    if (want === undefined) continue;
    check(`sregs.${jsonName}.base`, want.base, table.base);
    check(`sregs.${jsonName}.limit`, want.limit, table.limit);
  }
  for (const name of CONTROL) check(`sregs.${name}`, sregs[name], state[name]);

  const msrs = expected.msrs ?? {};
  check("msrs.STAR", msrs.STAR, state.star);
  check("msrs.LSTAR", msrs.LSTAR, state.lstar);
  check("msrs.CSTAR", msrs.CSTAR, state.cstar);
  check("msrs.SFMASK", msrs.SFMASK, state.fmask);
  check("msrs.KERNEL_GS_BASE", msrs.KERNEL_GS_BASE, state.kernelGsBase);
  check("msrs.FS_BASE", msrs.FS_BASE, state.fs.base);
  check("msrs.GS_BASE", msrs.GS_BASE, state.gs.base);

  // Memory: byte by byte; each run of differing bytes is one mismatch.
  (expected.memory ?? []).forEach((region, index) => {
    const want = hexToBytes(region.bytes);
    const got = readPhysical(state.memory, region.gpa, want.length);
    let i = 0;
    while (i < want.length) {
      if (want[i] === got[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < want.length && want[j] !== got[j]) j++;
      out.push({
        field: `memory[${index}]@${hex(region.gpa + BigInt(i))}`,
        expected: bytesToHex(want.subarray(i, j)),
        got: bytesToHex(got.subarray(i, j)),
      });
      i = j;
    }
  });
  return out;
}

export interface VectorCheckOptions {
  /** Overrides the vector's profile. */
  readonly profile?: ProfileName;
  /** Overrides `limits.max_steps`. */
  readonly maxSteps?: number;
  readonly timeoutMs: number;
}

export interface VectorResult {
  readonly name: string;
  readonly passed: boolean;
  readonly profile: ProfileName;
  /** `error`: the engine threw (a bug in it); the message is in `detail`. */
  readonly exit: EngineExit | "error";
  readonly expectedExit: ExpectedParsed["exit"];
  readonly steps: number | undefined;
  /** Why the engine could not finish (`unsupported`, `fault`, `timeout`). */
  readonly detail: string | undefined;
  /** Field differences; `exit` first when the exit differs. Empty when the run did not finish. */
  readonly mismatches: readonly Mismatch[];
  readonly state: ArchState;
}

/** Runs one loaded vector through `engine` and compares the result with its `expected` section. */
export function checkVector(loaded: LoadedVector, engine: VectorEngine, options: VectorCheckOptions): VectorResult {
  const profile = options.profile ?? loaded.profile;
  const maxSteps = options.maxSteps ?? loaded.vector.limits.max_steps;
  const expected = loaded.vector.expected;
  let result: EngineResult;
  try {
    result = engine(loaded.state, profile, maxSteps, options.timeoutMs);
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ");
    return {
      name: loaded.vector.name, passed: false, profile, exit: "error", expectedExit: expected.exit,
      steps: undefined, detail: `engine threw: ${message}`, mismatches: [], state: loaded.state,
    };
  }
  const finished = result.exit === "hlt" || result.exit === "shutdown" || result.exit === "limit";
  const mismatches: Mismatch[] = [];
  if (finished) {
    if (result.exit !== expected.exit) mismatches.push({ field: "exit", expected: expected.exit, got: result.exit });
    mismatches.push(...compareExpected(expected, result.state));
  }
  return {
    name: loaded.vector.name,
    passed: finished && mismatches.length === 0,
    profile,
    exit: result.exit,
    expectedExit: expected.exit,
    steps: result.steps,
    detail: finished ? undefined : (result.detail ?? result.exit),
    mismatches,
    state: result.state,
  };
}
