// Writing a `ringspec-state/1` document in pieces: the text is exactly
// JSON.stringify({format, profile, ...stateToJson(state)}, null, 2) + "\n", but handed out chunk by
// chunk (one memory entry's hex digits at a time, at most WRITE_REGION_BYTES bytes of memory), so
// writing a state costs time and memory linear in its size and never one string of the whole
// document: a state at the page budget is more text than V8's longest string.
import { bytesToHex, hex } from "./hex.ts";
import type { ProfileName } from "./profile.ts";
import { memoryRegions, stateJsonWith, type ArchState } from "./state.ts";

/** Stands for the memory array in the stringified rest of the document (cannot occur in it:
 *  every other string of a state is a hex number, a field name or an enum value). */
const MEMORY_MARK = "\u0000memory\u0000";

/** The document's text, in chunks (written in order, they are the whole document). */
export function* stateDocumentChunks(state: ArchState, profile: ProfileName): Generator<string> {
  const rest = JSON.stringify({ format: "ringspec-state/1", profile, ...stateJsonWith(state, MEMORY_MARK) }, null, 2) + "\n";
  const mark = JSON.stringify(MEMORY_MARK);
  const at = rest.indexOf(mark);
  yield rest.slice(0, at);
  let first = true;
  for (const r of memoryRegions(state.memory)) {
    yield `${first ? "[\n" : ",\n"}    {\n      "gpa": "${hex(r.gpa)}",\n      "bytes": "`;
    yield bytesToHex(r.bytes);
    yield `"\n    }`;
    first = false;
  }
  yield first ? "[]" : "\n  ]";
  yield rest.slice(at + mark.length);
}

/** The whole document as one string (small states; tests). */
export function stateDocumentText(state: ArchState, profile: ProfileName): string {
  return [...stateDocumentChunks(state, profile)].join("");
}
