// Reading state and vector files: every problem becomes one InputError line naming the file and,
// for a bad document, the JSON path of the bad field (contract/load.ts).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { FormatError, parseDocument, type LoadedFile } from "../contract/load.ts";

export class InputError extends Error {
  override name = "InputError";
}

/** One line, whatever the source message looked like. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function ioMessage(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EISDIR") return "is a directory, not a file";
  if (code === "EACCES") return "permission denied";
  return oneLine(e instanceof Error ? e.message : String(e));
}

export function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new InputError(`${path}: ${ioMessage(e)}`);
  }
}

/** A vector or state file, validated and inside the model's scope. */
export function loadDocument(path: string): LoadedFile {
  const text = readText(path);
  try {
    return parseDocument(text);
  } catch (e) {
    if (e instanceof FormatError) throw new InputError(`${path}: ${oneLine(e.message)}`);
    throw e;
  }
}

export type PathEntry = { readonly file: string; readonly error?: undefined } | { readonly file: string; readonly error: string };

/** PATH arguments → files, in argument order: a directory stands for its `*.json` files (not
 *  recursive), sorted by name; a path that cannot be read is an entry with an `error` line. */
export function expandPaths(paths: readonly string[]): PathEntry[] {
  const entries: PathEntry[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (e) {
      entries.push({ file: path, error: `${path}: ${ioMessage(e)}` });
      continue;
    }
    if (!isDirectory) {
      entries.push({ file: path });
      continue;
    }
    try {
      const names = readdirSync(path).filter((n) => n.endsWith(".json")).sort();
      for (const name of names) entries.push({ file: join(path, name) });
    } catch (e) {
      entries.push({ file: path, error: `${path}: ${ioMessage(e)}` });
    }
  }
  return entries;
}
