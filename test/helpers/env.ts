// The environment variables the tests read (seeds, run counts, replay paths, families, modes),
// each validated: a bad value stops the test file with one line naming the variable, instead of
// running with NaN (a seed of NaN is not a seed: the run cannot be replayed).

function fail(name: string, expected: string, value: string): never {
  throw new Error(`${name}: expected ${expected}, got ${JSON.stringify(value)}`);
}

/** A whole number from the environment (default when unset or empty). */
export function envInteger(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = /^-?[0-9]+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) fail(name, `a whole number from ${min} to ${max}`, text);
  return value;
}

/** One of `choices` (undefined when unset or empty). */
export function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const found = choices.find((c) => c === text);
  if (found === undefined) fail(name, `one of ${choices.join(", ")}`, text);
  return found;
}

/** A fast-check replay path ("3:1:0"), or undefined. */
export function envReplayPath(name = "RINGSPEC_PATH"): string | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  if (!/^[0-9]+(:[0-9]+)*$/.test(text)) fail(name, "a fast-check path such as 12:0:3 (numbers joined by colons)", text);
  return text;
}

/** "1" on, unset/"0"/"" off. */
export function envFlag(name: string): boolean {
  const text = process.env[name];
  if (text === undefined || text === "" || text === "0") return false;
  if (text !== "1") fail(name, '"1" (or unset)', text);
  return true;
}
