// Reading external files: JSON text → validated vector or state, or a one-line error that names
// the JSON path of the first bad field.
import type { z } from "zod";
import { StateFileJson, VectorJson, type VectorParsed } from "./schema.ts";
import { stateFromJson, type ArchState } from "./state.ts";
import { modelScopeViolation } from "./scope.ts";
import type { ProfileName } from "./profile.ts";

export class FormatError extends Error {
  override name = "FormatError";
}

/** `initial.regs.rax`, `initial.memory[3].gpa`; the document root is `$`. */
export function jsonPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`;
  return out === "" ? "$" : out;
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid";
  // Unknown keys are reported on the parent object; name the key itself.
  if (issue.code === "unrecognized_keys") return `${jsonPath([...issue.path, issue.keys[0] ?? "?"])}: unknown field`;
  return `${jsonPath(issue.path)}: ${issue.message}`;
}

function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`not valid JSON (${(e as Error).message})`);
  }
}

export interface LoadedVector {
  readonly vector: VectorParsed;
  readonly state: ArchState;
  readonly profile: ProfileName;
}

export interface LoadedStateFile {
  readonly state: ArchState;
  readonly profile: ProfileName | undefined;
}

function checkBases(j: { sregs: { fs: { base: bigint }; gs: { base: bigint } }; msrs: { FS_BASE: bigint; GS_BASE: bigint } }, where: string) {
  if (j.msrs.FS_BASE !== j.sregs.fs.base) throw new FormatError(`${where}.msrs.FS_BASE: differs from ${where}.sregs.fs.base`);
  if (j.msrs.GS_BASE !== j.sregs.gs.base) throw new FormatError(`${where}.msrs.GS_BASE: differs from ${where}.sregs.gs.base`);
}

function checkScope(state: ArchState, where: string) {
  const violation = modelScopeViolation(state);
  if (violation !== null) throw new FormatError(`${where}: not covered by the model: ${violation}`);
}

/** Parses a `ringspec-vector/1` document. Throws FormatError with a one-line message. */
export function parseVector(value: unknown): LoadedVector {
  const result = VectorJson.safeParse(value);
  if (!result.success) throw new FormatError(firstIssue(result.error));
  const vector = result.data;
  checkBases(vector.initial, "initial");
  const base = stateFromJson(vector.initial);
  const inject = vector.inject;
  // vector README, "Running a vector" 2: injected events are pending from the start.
  const state: ArchState =
    inject === undefined
      ? base
      : {
          ...base,
          cpu: {
            ...base.cpu,
            pendingIrq: inject.irq ?? base.cpu.pendingIrq,
            pendingNmi: inject.nmi === true || base.cpu.pendingNmi,
          },
        };
  checkScope(state, "initial");
  return { vector, state, profile: vector.profile ?? "intel" };
}

/** Parses a `ringspec-state/1` document (a saved state). */
export function parseStateFile(value: unknown): LoadedStateFile {
  const result = StateFileJson.safeParse(value);
  if (!result.success) throw new FormatError(firstIssue(result.error));
  checkBases(result.data, "$");
  const state = stateFromJson(result.data);
  checkScope(state, "$");
  return { state, profile: result.data.profile };
}

export type LoadedFile = ({ kind: "vector" } & LoadedVector) | ({ kind: "state" } & LoadedStateFile);

/** A vector or a state file, told apart by its `format` field. */
export function parseDocument(text: string): LoadedFile {
  const value = parseJsonText(text);
  const format = typeof value === "object" && value !== null ? (value as { format?: unknown }).format : undefined;
  if (format === "ringspec-vector/1") return { kind: "vector", ...parseVector(value) };
  if (format === "ringspec-state/1") return { kind: "state", ...parseStateFile(value) };
  throw new FormatError(`format: expected "ringspec-vector/1" or "ringspec-state/1"`);
}
