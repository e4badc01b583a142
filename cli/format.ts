// Output formatting: saved-state documents and stop lines (traces are trace/'s renderers).
import { stateToJson, type ArchState } from "../contract/state.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { StopReason } from "../contract/engine.ts";

/** A `ringspec-state/1` document: reloadable with `ringspec run`. */
export function stateDocument(state: ArchState, profile: ProfileName): string {
  return JSON.stringify({ format: "ringspec-state/1", profile, ...stateToJson(state) }, null, 2) + "\n";
}

/** `stop: hlt after 12 steps; at 0x11001: hlt`, with the engine's detail after the count. */
export function stopLine(exit: StopReason | "error", steps: number | undefined, at: string, detail: string | undefined): string {
  const count = steps === undefined ? "" : ` after ${steps} step${steps === 1 ? "" : "s"}`;
  return `stop: ${exit}${count}${detail === undefined ? "" : `: ${detail}`}; at ${at}`;
}
