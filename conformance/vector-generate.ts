// `ringspec vectors generate`: vectors in the shared format (`ringspec-vector/1`) from the spec's
// runs of generated cases (the campaign families), one folder per family, each with its
// provenance (generator, seed, family, case index, the case itself) and its profile. What the
// architecture leaves undefined is left out of `expected`:
//   - status flags an instruction leaves undefined (spec/instructions/undefined-flags.ts): the run
//     stops after the first such instruction and RFLAGS is not expected (any later flag-reading
//     step would make more state undefined);
//   - the hidden part of a data segment register holding a NULL selector (only its selector is
//     expected);
//   - memory the run did not write (only written bytes are expected).
// Cases that raise events between steps (model-based sequences with IRQ/NMI commands) cannot be
// said by a vector and are skipped; so are cases the spec cannot run (`unsupported` at once).
import type { ProfileName } from "../contract/profile.ts";
import { stateToJson, type ArchState } from "../contract/state.ts";
import type { VectorJsonIn } from "../contract/schema.ts";
import { bytesToHex, hex } from "../contract/hex.ts";
import { SpecEngine } from "../spec/engine.ts";
import { decode } from "../spec/decode/decode.ts";
import { undefinedFlags } from "../spec/instructions/undefined-flags.ts";
import { runEngine } from "../engines/runner.ts";
import { caseId, caseValue } from "./campaign/cases.ts";
import { describeValue } from "./campaign/run.ts";
import type { Family } from "./campaign/families.ts";

export const GENERATOR = "ringspec vectors generate 1";

export interface GeneratedVector {
  readonly family: string;
  readonly name: string;
  readonly vector: VectorJsonIn;
}

export interface GenerateOptions {
  readonly seed: number;
  readonly families: readonly Family[];
  readonly profile: ProfileName | undefined;
  readonly timeoutMs: number;
}

const DATA_SEGMENTS = ["ds", "es", "fs", "gs", "ss"] as const;

/** The bytes `final` holds that differ from `initial`, as regions. */
function written(initial: ArchState, final: ArchState): { gpa: string; bytes: string }[] {
  const out: { gpa: string; bytes: string }[] = [];
  const zero = new Uint8Array(4096);
  for (const n of [...new Set([...initial.memory.keys(), ...final.memory.keys()])].sort((a, b) => a - b)) {
    const a = initial.memory.get(n) ?? zero;
    const b = final.memory.get(n) ?? zero;
    if (a === b) continue;
    let i = 0;
    while (i < 4096) {
      if (a[i] === b[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < 4096 && a[j] !== b[j]) j++;
      out.push({ gpa: hex(BigInt(n) * 4096n + BigInt(i)), bytes: bytesToHex(b.subarray(i, j)) });
      i = j;
    }
  }
  return out;
}

/** The status flags instruction `bytes` may leave undefined (0n: none), decoded by the spec. */
function undefinedFlagsOf(bytes: Uint8Array, mode64: boolean): bigint {
  const insn = decode((i) => bytes[i] ?? 0, mode64);
  return "mnemonic" in insn ? undefinedFlags(insn.mnemonic) : 0n;
}

/** The vector of case `index`, or why there is none. */
export function generateVector(options: GenerateOptions, index: number): GeneratedVector | string {
  const id = caseId(options.families, options.seed, index);
  const value = caseValue(id);
  const built = id.family.build(value, options.profile);
  if (built.raises.length > 0) return "raises events between steps";
  const profile = built.profile;
  const engine = new SpecEngine();
  engine.load(built.state, profile);
  let stopAt: number | undefined;
  let unsupportedAt: number | undefined;
  const run = runEngine(engine, {
    maxSteps: built.maxSteps,
    timeoutMs: options.timeoutMs,
    onStep: ({ step, before, event }) => {
      if (event.kind === "unsupported") {
        unsupportedAt = step;
        return "stop";
      }
      const bytes = event.instruction?.bytes;
      if (event.kind === "retired" && bytes !== undefined && bytes.length > 0 && undefinedFlagsOf(bytes, before.cs.l === 1) !== 0n) {
        stopAt = step;
        return "stop";
      }
    },
  });
  // Ended by an instruction the spec does not model: the vector stops before it.
  let steps = run.stop.steps;
  let final = run.state;
  let exit: "hlt" | "shutdown" | "limit";
  if (unsupportedAt !== undefined) {
    if (unsupportedAt <= 1) return "the spec does not model its first instruction";
    steps = unsupportedAt - 1;
    engine.load(built.state, profile);
    final = runEngine(engine, { maxSteps: steps, timeoutMs: options.timeoutMs }).state;
    exit = "limit";
  } else if (stopAt !== undefined) exit = "limit";
  else if (run.stop.reason === "hlt" || run.stop.reason === "shutdown" || run.stop.reason === "limit") exit = run.stop.reason;
  else return `the spec's run ended with ${run.stop.reason}`;
  if (exit !== "limit") steps = built.maxSteps;

  const json = stateToJson(final);
  const sregs: Record<string, unknown> = { ...json.sregs };
  for (const name of DATA_SEGMENTS) if ((final[name].selector & ~3) === 0) sregs[name] = { selector: hex(final[name].selector) };
  const regs: Record<string, string> = { ...json.regs };
  if (stopAt !== undefined) delete regs.rflags;
  const name = `${id.family.name}-${options.seed}-${index}`;
  const flagsNote = stopAt !== undefined ? ` The run stops after step ${stopAt}, whose instruction leaves status flags undefined; RFLAGS is not expected.` : "";
  const vector: VectorJsonIn = {
    format: "ringspec-vector/1",
    name,
    description: `Generated case ${index} of the ${id.family.name} family (${id.family.description}).${flagsNote}`,
    provenance: {
      recorded_with: [`ringspec spec (${GENERATOR})`],
      agrees_with_sdm: false,
      notes: `Generated from the spec model, not recorded on hardware or an emulator. Generator: ${GENERATOR}; family ${id.family.name}; seed ${options.seed}; case ${index} (case seed ${id.seed}). Regenerate: npx ringspec vectors generate --seed ${options.seed} --families ${options.families.map((f) => f.name).join(",")}${options.profile === undefined ? "" : ` --profile ${options.profile}`} --count ${index + 1}. Case: ${describeValue(value)}`,
    },
    profile,
    initial: stateToJson(built.state),
    limits: { max_steps: steps },
    expected: {
      exit,
      regs: regs as NonNullable<VectorJsonIn["expected"]["regs"]>,
      sregs: sregs as NonNullable<VectorJsonIn["expected"]["sregs"]>,
      msrs: json.msrs,
      memory: written(built.state, final),
    },
  };
  return { family: id.family.name, name, vector };
}
