// Reading input files: the one place the command line opens a file it was given. Every problem
// becomes one InputError line naming the file (escaped: contract/text.ts) and, for a bad
// document, the JSON path of the bad field (contract/load.ts).
//
// Only regular files are read, and only up to a cap checked before reading: a FIFO or a device
// named *.json (/dev/zero, /dev/stdin) is refused at once — opened without blocking, so a FIFO
// with no writer cannot hang the command — and a file larger than its cap is refused by its size.
// Directories are listed, not followed into: `vectors check DIR` reads DIR's *.json files;
// walkFiles descends into subdirectories once each (by device and inode), so a symbolic link
// loop ends.
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";
import { FormatError, parseDocument, type LoadedFile } from "../contract/load.ts";
import { MAX_JSON_FILE_BYTES, MAX_STATE_FILE_BYTES } from "../contract/limits.ts";
import { displayText } from "../contract/text.ts";

export class InputError extends Error {
  override name = "InputError";
}

/** One line, whatever the source message looked like, with nothing a terminal would act on. */
export function oneLine(text: string): string {
  return displayText(text.replace(/\s*\n\s*/g, " ").trim());
}

/** A path as messages show it. */
export function shownPath(path: string): string {
  return displayText(path);
}

function ioMessage(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "is a directory, not a file";
  if (code === "EACCES") return "permission denied";
  if (code === "ELOOP") return "too many levels of symbolic links";
  if (code === "ENXIO") return "not a regular file (a device or socket with nothing behind it)";
  return oneLine(e instanceof Error ? e.message : String(e));
}

function kindOf(s: Stats): string {
  if (s.isDirectory()) return "a directory";
  if (s.isFIFO()) return "a FIFO";
  if (s.isCharacterDevice()) return "a character device";
  if (s.isBlockDevice()) return "a block device";
  if (s.isSocket()) return "a socket";
  return "not a regular file";
}

/** "512 MiB", "64 KiB", "900 bytes". */
export function byteSize(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n.toLocaleString("en-US")} bytes`;
}

export interface ReadLimits {
  /** Most bytes the file may have. */
  readonly maxBytes: number;
  /** What the file is, for the size message ("a state or vector file"). */
  readonly what: string;
}

/** The bytes of a regular file of at most `maxBytes`; InputError otherwise. Never blocks on a
 *  FIFO and never reads past the cap (a file that grows while read is refused). */
export function readInputBytes(path: string, limits: ReadLimits): Uint8Array {
  return readInto(path, limits, (size) => new Uint8Array(size));
}

/** Files up to this size are read into one reused buffer by loadDocument, which parses them at
 *  once and keeps nothing of the bytes; larger ones get a buffer of their own (so the reused one
 *  never holds a huge state file's bytes for the rest of the process). */
const SCRATCH_MAX_BYTES = 4 * 1024 * 1024;
let scratch = new Uint8Array(0);

/** A buffer of at least `size` bytes: the reused one while files are small. Allocating and
 *  zeroing a fresh buffer a file was a tenth of reading the 1,265 bench vectors, and its garbage
 *  (external memory) brought the collector round sooner. */
function scratchBuffer(size: number): Uint8Array {
  if (size > SCRATCH_MAX_BYTES) return new Uint8Array(size);
  if (scratch.length < size) scratch = new Uint8Array(Math.min(SCRATCH_MAX_BYTES, Math.max(size, 2 * scratch.length, 64 * 1024)));
  return scratch;
}

/** readInputBytes into a buffer from `allocate(size + 1)` (one byte more than the file's size, to
 *  see a file that grew): the file's bytes are its first `length`. */
function readInto(path: string, limits: ReadLimits, allocate: (size: number) => Uint8Array): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw new InputError(`${shownPath(path)}: ${ioMessage(e)}`);
  }
  try {
    const stats = fstatSync(fd);
    if (stats.isDirectory()) throw new InputError(`${shownPath(path)}: is a directory, not a file`);
    if (!stats.isFile()) throw new InputError(`${shownPath(path)}: ${kindOf(stats)}, not a regular file`);
    const tooBig = () => new InputError(`${shownPath(path)}: larger than ${byteSize(limits.maxBytes)}, the cap on ${limits.what}`);
    if (stats.size > limits.maxBytes) throw tooBig();
    const buffer = allocate(stats.size + 1);
    const end = stats.size + 1;
    let length = 0;
    for (;;) {
      const wanted = end - length;
      const n = readSync(fd, buffer, length, wanted, null);
      if (n === 0) break;
      length += n;
      if (length === end) throw tooBig();
      // A read that stopped short at the size fstat gave met the end of the file: had the file
      // grown before it, it would have read on, to the byte past the size (refused above). So the
      // extra read that would return 0 bytes (one system call per file) is skipped.
      if (n < wanted && length === stats.size) break;
    }
    return buffer.subarray(0, length);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${shownPath(path)}: ${ioMessage(e)}`);
  } finally {
    closeSync(fd);
  }
}

/** A text file (UTF-8) read as readInputBytes reads it; by default capped as the JSON inputs. */
export function readText(path: string, limits: ReadLimits = { maxBytes: MAX_JSON_FILE_BYTES, what: "JSON input files" }): string {
  const bytes = readInputBytes(path, limits);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InputError(`${shownPath(path)}: not UTF-8 text`);
  }
}

export const STATE_FILE_LIMITS: ReadLimits = { maxBytes: MAX_STATE_FILE_BYTES, what: "state and vector files" };

/** A vector or state file, validated and inside the model's scope. */
export function loadDocument(path: string): LoadedFile {
  // The reused buffer: parseDocument keeps nothing of the bytes (it decodes them to text, or the
  // byte parser copies out what it reads).
  const bytes = readInto(path, STATE_FILE_LIMITS, scratchBuffer);
  try {
    return parseDocument(bytes);
  } catch (e) {
    if (e instanceof FormatError) throw new InputError(`${shownPath(path)}: ${oneLine(e.message)}`);
    throw e;
  }
}

export type PathEntry = { readonly file: string; readonly error?: undefined } | { readonly file: string; readonly error: string };

/** PATH arguments → files, in argument order: a directory stands for its `*.json` files (not
 *  recursive), sorted by name; a path that cannot be read is an entry with an `error` line. What
 *  each entry is (a regular file or not) is checked when it is read. */
export function expandPaths(paths: readonly string[], suffix = ".json"): PathEntry[] {
  const entries: PathEntry[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (e) {
      entries.push({ file: path, error: `${shownPath(path)}: ${ioMessage(e)}` });
      continue;
    }
    if (!isDirectory) {
      entries.push({ file: path });
      continue;
    }
    try {
      const names = readdirSync(path).filter((n) => n.endsWith(suffix)).sort();
      for (const name of names) entries.push({ file: join(path, name) });
    } catch (e) {
      entries.push({ file: path, error: `${shownPath(path)}: ${ioMessage(e)}` });
    }
  }
  return entries;
}

/** Every file under `dir` whose name ends in `suffix`, in name order, subdirectories included:
 *  each directory is entered once (by device and inode), so a symbolic link that points back up
 *  the tree ends the walk instead of looping; at most `maxFiles` files (then InputError). */
export function walkFiles(dir: string, suffix: string, maxFiles = 100_000): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (path: string) => {
    let s: Stats;
    try {
      s = statSync(path);
    } catch (e) {
      throw new InputError(`${shownPath(path)}: ${ioMessage(e)}`);
    }
    const id = `${s.dev}:${s.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (e) {
      throw new InputError(`${shownPath(path)}: ${ioMessage(e)}`);
    }
    for (const name of names) {
      const child = join(path, name);
      let entry: Stats;
      try {
        entry = lstatSync(child);
        if (entry.isSymbolicLink()) entry = statSync(child);
      } catch {
        continue; // a dangling link
      }
      if (entry.isDirectory()) visit(child);
      else if (name.endsWith(suffix)) {
        out.push(child);
        if (out.length > maxFiles) throw new InputError(`${shownPath(dir)}: more than ${maxFiles.toLocaleString("en-US")} ${suffix} files`);
      }
    }
  };
  visit(dir);
  return out;
}
