// Command-line parsing: `--name value`, `--name=value`, boolean flags, `--` ends the options.
// Every problem is a UsageError with one line naming the argument; main turns it into exit 2.
import { PROFILE_NAMES, type ProfileName } from "../contract/profile.ts";
import { ALL_ENGINE_NAMES as ENGINE_NAMES, ALL_ENGINES as ENGINES } from "../engines/registry.ts";
import { parseGdbTarget } from "../engines/gdb/engine.ts";
import type { EmulatorOptions } from "../engines/emulators.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

export interface OptionSpec {
  readonly name: string;
  /** true: `--name VALUE`; false: a flag. */
  readonly value: boolean;
  /** May be given more than once (ParsedArgs.lists holds every value, in order). */
  readonly repeatable?: boolean;
}

export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly values: ReadonlyMap<string, string>;
  /** Every value of each repeatable option, in order. */
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly flags: ReadonlySet<string>;
}

export const HELP_OPTION: OptionSpec = { name: "help", value: false };

export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], command: string): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const positionals: string[] = [];
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const flags = new Set<string>();
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    if (arg === "-h") {
      flags.add("help");
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, eq === -1 ? undefined : eq) : "";
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`${command}: unknown option ${JSON.stringify(eq === -1 ? arg : arg.slice(0, eq))} (see ${command} --help)`);
    if ((values.has(name) && spec.repeatable !== true) || flags.has(name)) throw new UsageError(`${command}: --${name} given more than once`);
    if (!spec.value) {
      if (eq !== -1) throw new UsageError(`${command}: --${name} takes no value`);
      flags.add(name);
      continue;
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`${command}: --${name} needs a value`);
      value = next;
      i++;
    }
    values.set(name, value);
    if (spec.repeatable === true) lists.set(name, [...(lists.get(name) ?? []), value]);
  }
  return { positionals, values, lists, flags };
}

export function parseProfile(text: string): ProfileName {
  const found = PROFILE_NAMES.find((p) => p === text);
  if (found === undefined) throw new UsageError(`--profile: expected ${PROFILE_NAMES.join(" or ")}, got ${JSON.stringify(text)}`);
  return found;
}

export const DEFAULT_MAX_STEPS = 1_000_000;
export const DEFAULT_TIMEOUT_SECONDS = 60;

export function parseMaxSteps(text: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--max-steps: expected a whole number of steps (0 or more), got ${JSON.stringify(text)}`);
  return n;
}

/** The longest --timeout: one day (as a kernel loader description's limits.timeout_seconds). */
export const MAX_TIMEOUT_SECONDS = 86_400;

/** Seconds (decimals and exponents allowed: 90, 2.5, 1e3) → milliseconds; above 0, at most
 *  MAX_TIMEOUT_SECONDS. */
export function parseTimeout(text: string): number {
  const seconds = /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(seconds)) throw new UsageError(`--timeout: expected a number of seconds, got ${JSON.stringify(text)}`);
  if (seconds > MAX_TIMEOUT_SECONDS) throw new UsageError(`--timeout: at most ${MAX_TIMEOUT_SECONDS} seconds (one day), got ${JSON.stringify(text)}`);
  const ms = Math.round(seconds * 1000);
  if (ms < 1) throw new UsageError(`--timeout: expected at least 0.001 seconds, got ${JSON.stringify(text)}`);
  return ms;
}

/** The --engine lines of the help texts, from the engine registry. */
export function engineHelp(): string {
  const option = `  --engine ${ENGINE_NAMES.join("|")}`;
  const title = "the engine (default spec):";
  const lines = option.length < 23 ? [`${option.padEnd(24)}${title}`] : [option, `${" ".repeat(24)}${title}`];
  for (const e of ENGINES) lines.push(`${" ".repeat(24)}${e.name}: ${e.description}`);
  lines.push(
    `  --qemu PATH           the QEMU program for --engine qemu (default qemu-system-x86_64)`,
    `  --qemu-cpu MODEL      QEMU's -cpu (default max, vendor from the profile)`,
    `  --bochs PATH          the Bochs program for --engine bochs (default bochs)`,
    `  --gdb HOST:PORT       the GDB stub for --engine gdb (or a unix socket path)`,
    `  --cmd "COMMAND"       the command of --engine process (JSON-lines protocol, docs/protocol.md)`,
  );
  return lines.join("\n");
}

export function parseEngine(text: string): string {
  if (!ENGINE_NAMES.includes(text)) throw new UsageError(`--engine: expected ${ENGINE_NAMES.join(" or ")}, got ${JSON.stringify(text)}`);
  return text;
}

/** The options every running command shares. */
export const RUN_OPTIONS: readonly OptionSpec[] = [
  HELP_OPTION,
  { name: "profile", value: true },
  { name: "max-steps", value: true },
  { name: "timeout", value: true },
  { name: "engine", value: true },
  // Where the emulator engines find their emulator.
  { name: "qemu", value: true },
  { name: "qemu-cpu", value: true },
  { name: "bochs", value: true },
  { name: "gdb", value: true },
  // The command of the process engine.
  { name: "cmd", value: true },
];

export interface RunSettings {
  /** Given with --profile; else the file's profile, else intel. */
  readonly profile: ProfileName | undefined;
  /** Given with --max-steps; else the vector's limits.max_steps, else DEFAULT_MAX_STEPS. */
  readonly maxSteps: number | undefined;
  readonly timeoutMs: number;
  readonly engine: string;
  /** --qemu, --qemu-cpu, --bochs, --gdb (for the emulator engines). */
  readonly emulator: EmulatorOptions;
  /** --cmd (for the process engine). */
  readonly command: string | undefined;
}

/** The emulator options, each only with the engine that uses it. */
function emulatorOptions(args: ParsedArgs, engine: string): EmulatorOptions {
  const uses: Readonly<Record<string, string>> = { qemu: "qemu", "qemu-cpu": "qemu", bochs: "bochs", gdb: "gdb" };
  const out: Record<string, string> = {};
  for (const [option, owner] of Object.entries(uses)) {
    const value = args.values.get(option);
    if (value === undefined) continue;
    if (engine !== owner) throw new UsageError(`--${option} goes with --engine ${owner}`);
    if (value === "") throw new UsageError(`--${option}: expected a value`);
    out[option === "qemu-cpu" ? "qemuCpu" : option] = value;
  }
  if (engine === "gdb" && out.gdb === undefined) throw new UsageError("--engine gdb needs --gdb HOST:PORT");
  if (out.gdb !== undefined) {
    const target = parseGdbTarget(out.gdb);
    if (typeof target === "string") throw new UsageError(`--gdb: ${target}`);
  }
  return out;
}

function processCommand(args: ParsedArgs, engine: string): string | undefined {
  const command = args.values.get("cmd");
  if (command !== undefined && engine !== "process") throw new UsageError("--cmd goes with --engine process");
  if (engine === "process" && (command === undefined || command.trim() === "")) throw new UsageError('--engine process needs --cmd "COMMAND"');
  return command;
}

export function runSettings(args: ParsedArgs): RunSettings {
  const profile = args.values.get("profile");
  const maxSteps = args.values.get("max-steps");
  const timeout = args.values.get("timeout");
  const engine = parseEngine(args.values.get("engine") ?? "spec");
  return {
    profile: profile === undefined ? undefined : parseProfile(profile),
    maxSteps: maxSteps === undefined ? undefined : parseMaxSteps(maxSteps),
    timeoutMs: timeout === undefined ? DEFAULT_TIMEOUT_SECONDS * 1000 : parseTimeout(timeout),
    engine,
    emulator: emulatorOptions(args, engine),
    command: processCommand(args, engine),
  };
}
