// The engines `--engine NAME` can select, by name. In-process engines (spec/, impl/) come as an
// Engine (`create`) and, through asAsync, as an AsyncEngine (`open`); an engine in another process
// (QEMU, Bochs, a JSON-lines emulator) comes only through `open`. Consumers that can drive either
// (vector checks, the CLI) use `open`; lockstep and benchmarks, which need the synchronous
// interface's speed, use `create`.
import { asAsync } from "../contract/async.ts";
import type { AsyncEngine, Engine, EngineCapabilities } from "../contract/engine.ts";
import { PROFILE_NAMES } from "../contract/profile.ts";
import { ImplEngine } from "../impl/engine.ts";
import { SpecEngine } from "../spec/engine.ts";
import { EMULATOR_ENGINES, type EmulatorOptions } from "./emulators.ts";
import { ProcessEngine } from "./process/engine.ts";
import { EngineError } from "./host/errors.ts";

export interface EngineOptions {
  /** Ask for each step's rule IDs (only engines whose capabilities say `rules` give them). */
  readonly rules?: boolean;
  /** Where the emulator engines find their emulator (`--qemu`, `--qemu-cpu`, `--bochs`, `--gdb`). */
  readonly emulator?: EmulatorOptions;
  /** The command of the `process` engine (`--cmd`): anything that speaks the JSON-lines protocol. */
  readonly command?: string;
}

export interface EngineEntry {
  readonly name: string;
  /** One line for help texts. */
  readonly description: string;
  readonly capabilities: EngineCapabilities;
  /** A new in-process engine; absent for engines behind an asynchronous boundary. */
  readonly create?: (options?: EngineOptions) => Engine;
  /** A new engine behind the AsyncEngine interface (close it when done). */
  readonly open: (options?: EngineOptions) => Promise<AsyncEngine>;
}

/** An in-process engine: both forms from one constructor. */
function inProcess(description: string, capabilities: EngineCapabilities, create: (options: EngineOptions) => Engine): EngineEntry {
  return {
    name: capabilities.name,
    description,
    capabilities,
    create: (options = {}) => create(options),
    open: async (options = {}) => asAsync(create(options), capabilities),
  };
}

const FULL_VIEW = { profiles: PROFILE_NAMES, singleStep: true, raise: true, touched: true, unobservable: [] } as const;

/** The in-process engines (both forms). */
export const ENGINES: readonly EngineEntry[] = [
  inProcess("the reference model (spec/): readable, every rule tagged", { name: "spec", ...FULL_VIEW, rules: true, devices: true }, (o) => new SpecEngine({ rules: o.rules === true })),
  inProcess("the optimized emulator (impl/)", { name: "impl", ...FULL_VIEW, devices: true }, () => new ImplEngine()),
];

export const ENGINE_NAMES: readonly string[] = ENGINES.map((e) => e.name);

/** An engine in another process behind the JSON-lines protocol (engines/process/): its
 *  capabilities come from its `hello`. */
const PROCESS_ENGINE: EngineEntry = {
  name: "process",
  description: 'any engine that speaks the JSON-lines protocol (--cmd "COMMAND"; docs/protocol.md)',
  capabilities: { name: "process", profiles: PROFILE_NAMES, singleStep: true, raise: true, touched: true, unobservable: [] },
  open: async (options = {}) => {
    if (options.command === undefined || options.command.trim() === "") throw new EngineError("usage", '--engine process needs --cmd "COMMAND"');
    return ProcessEngine.start({ command: options.command });
  },
};

/** Every engine `--engine` can name: the in-process ones, then the engines in other processes
 *  (engines/emulators.ts: QEMU, Bochs, a GDB stub; the JSON-lines process engine), which come only
 *  as AsyncEngines. */
export const ALL_ENGINES: readonly EngineEntry[] = [...ENGINES, ...EMULATOR_ENGINES, PROCESS_ENGINE];
export const ALL_ENGINE_NAMES: readonly string[] = ALL_ENGINES.map((e) => e.name);

/** The engine called `name` (in-process or not), or undefined. */
export function engineEntry(name: string): EngineEntry | undefined {
  return ALL_ENGINES.find((e) => e.name === name);
}

/** The in-process engine called `name`; throws when there is none (a caller's mistake). */
export function createEngine(name: string, options: EngineOptions = {}): Engine {
  const create = engineEntry(name)?.create;
  if (create === undefined) throw new Error(`no in-process engine called ${JSON.stringify(name)} (engines: ${ENGINE_NAMES.join(", ")})`);
  return create(options);
}
