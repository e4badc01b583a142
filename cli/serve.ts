// `ringspec serve --engine spec|impl`: an in-process engine behind the JSON-lines engine protocol
// on stdin/stdout (engines/process/server.ts), the reference server for emulator authors; with
// `--plant BUG`, a deliberately broken one (conformance/planted.ts).
import type { Io } from "./io.ts";
import type { Engine } from "../contract/engine.ts";
import { serveEngine, servedCapabilities } from "../engines/process/server.ts";
import { PROTOCOL_VERSION } from "../engines/process/protocol.ts";
import { PLANTED_BUGS, PlantedEngine, plantedBug, plantedEngineName } from "../conformance/planted.ts";

export const SERVE_HELP = `Usage: ringspec serve [--engine spec|impl] [--plant BUG] [--rules]

Serves an engine over the JSON-lines engine protocol (${PROTOCOL_VERSION}, docs/protocol.md) on
stdin and stdout: one request per line in, one answer per line out, until stdin ends. It is the
reference implementation of the engine side, and what \`conform --b process --cmd "..."\` and
\`vectors check --engine process --cmd "..."\` drive.

Options:
  --engine spec|impl    the engine served (default impl)
  --rules               events carry the rule IDs of each step (spec only)
  --plant BUG           plant a known bug on top of the engine, to see what a campaign reports:
${PLANTED_BUGS.map((b) => `                          ${b.name}: ${b.description}`).join("\n")}
  -h, --help            this help`;

/** The engines served, loaded on demand: a served engine starts in a fraction of a second
 *  (cli/bin.js runs this command without loading the rest of the CLI). */
const SERVED: Readonly<Record<string, (rules: boolean) => Promise<Engine>>> = {
  spec: async (rules) => new (await import("../spec/engine.ts")).SpecEngine({ rules }),
  impl: async () => new (await import("../impl/engine.ts")).ImplEngine(),
};
const ENGINE_NAMES = Object.keys(SERVED);

/** Bad arguments: one line on stderr, exit status 2 (thrown errors would need the CLI's error
 *  classes, whose module loads every engine). */
function usage(io: Io, message: string): number {
  io.err(`ringspec: serve: ${message} (see serve --help)`);
  return 2;
}

export async function serveCommand(argv: readonly string[], io: Io): Promise<number> {
  const values = new Map<string, string>();
  let rules = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") {
      io.out(SERVE_HELP + "\n");
      return 0;
    }
    if (arg === "--rules") {
      rules = true;
      continue;
    }
    const m = /^--(engine|plant)(?:=(.*))?$/.exec(arg);
    if (m === null) return usage(io, `unexpected argument ${JSON.stringify(arg)}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) return usage(io, `--${m[1]} needs a value`);
    if (values.has(m[1]!)) return usage(io, `--${m[1]} given more than once`);
    values.set(m[1]!, value);
  }
  const name = values.get("engine") ?? "impl";
  if (!ENGINE_NAMES.includes(name)) return usage(io, `--engine: expected ${ENGINE_NAMES.join(" or ")}, got ${JSON.stringify(name)}`);
  if (rules && name !== "spec") return usage(io, "--rules: only the spec engine reports rules");
  const plant = values.get("plant");
  const bug = plant === undefined ? undefined : plantedBug(plant);
  if (plant !== undefined && bug === undefined) return usage(io, `--plant: expected one of ${PLANTED_BUGS.map((b) => b.name).join(", ")}, got ${JSON.stringify(plant)}`);
  const inner = await SERVED[name]!(rules);
  const engine = bug === undefined ? inner : new PlantedEngine(inner, bug);
  const label = bug === undefined ? name : plantedEngineName(name, bug);
  await serveEngine(engine, servedCapabilities(label, rules), process.stdin, process.stdout);
  return 0;
}
