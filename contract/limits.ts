// The caps on what ringspec reads and holds: one table, so both engines, every command and the
// README say the same numbers. Each is refused with one line naming the file and the field
// (contract/load.ts, cli/input.ts); README "Limits and safety" lists them.

/** Guest physical memory a state may hold and a run may grow to: 65,536 pages of 4 KiB (256 MiB).
 *  The loader refuses a state whose memory spans more pages; an engine that would need one more
 *  page stops with `memory-limit`. */
export const PAGE_BUDGET = 65_536;

/** Entries of a state's `memory` array (and of a vector's `expected.memory`). A state ringspec
 *  writes has at most one entry per non-zero page, so it always fits. */
export const MAX_MEMORY_ENTRIES = 65_536;

/** Size of a state or vector file. A full page budget of non-zero memory is 512 MiB of hex
 *  digits; with its JSON around it a written state stays below this. */
export const MAX_STATE_FILE_BYTES = 576 * 1024 * 1024;

/** Size of the other JSON inputs (loader descriptions, rubrics, symbol maps, frame layouts,
 *  divergence documents, reports). */
export const MAX_JSON_FILE_BYTES = 64 * 1024 * 1024;

/** JSON values (objects, arrays, strings, numbers, literals) in one document: a written state at
 *  the entry cap has about 200,000. Bounds the objects a small file of `[0,0,0,...]` can make. */
export const MAX_JSON_VALUES = 1_000_000;

/** Nesting depth of one JSON document (the formats nest five levels deep). */
export const MAX_JSON_DEPTH = 64;

/** Bytes of one JSON string (a memory entry's hex digits): below V8's longest string. */
export const MAX_JSON_STRING_BYTES = 256 * 1024 * 1024;

/** A written state splits memory into entries of at most this many bytes (aligned windows), so no
 *  single hex string is larger than 2 MiB however much memory is contiguous. */
export const WRITE_REGION_BYTES = 1024 * 1024;
