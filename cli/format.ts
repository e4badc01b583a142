// Output formatting: saved-state documents and stop lines (traces are trace/'s renderers).
import type { ArchState } from "../contract/state.ts";
import { stateDocumentChunks, stateDocumentText } from "../contract/write-state.ts";
import type { ProfileName } from "../contract/profile.ts";
import type { StopReason } from "../contract/engine.ts";

/** A `ringspec-state/1` document: reloadable with `ringspec run` (small states: one string). */
export function stateDocument(state: ArchState, profile: ProfileName): string {
  return stateDocumentText(state, profile);
}

/** Writes a `ringspec-state/1` document in chunks of about 1 MiB: time and memory linear in the
 *  state's size, never one string of the whole document. */
export function writeStateDocument(state: ArchState, profile: ProfileName, write: (chunk: string) => void): void {
  let parts: string[] = [];
  let size = 0;
  for (const chunk of stateDocumentChunks(state, profile)) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= 1 << 20) {
      write(parts.join(""));
      parts = [];
      size = 0;
    }
  }
  if (parts.length > 0) write(parts.join(""));
}

/** `stop: hlt after 12 steps; at 0x11001: hlt`, with the engine's detail after the count. */
export function stopLine(exit: StopReason | "error", steps: number | undefined, at: string, detail: string | undefined): string {
  const count = steps === undefined ? "" : ` after ${steps} step${steps === 1 ? "" : "s"}`;
  return `stop: ${exit}${count}${detail === undefined ? "" : `: ${detail}`}; at ${at}`;
}
