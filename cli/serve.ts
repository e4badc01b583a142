// `ringspec serve --engine spec|impl`: an in-process engine behind the JSON-lines engine protocol
// on stdin/stdout (engines/process/server.ts), the reference server for emulator authors; with
// `--plant BUG`, a deliberately broken one (conformance/planted.ts).
import { parseArgs, HELP_OPTION, UsageError } from "./args.ts";
import type { Io } from "./io.ts";
import { createEngine, ENGINE_NAMES } from "../engines/registry.ts";
import { serveEngine, servedCapabilities } from "../engines/process/server.ts";
import { PROTOCOL_VERSION } from "../engines/process/protocol.ts";
import { PLANTED_BUGS, PlantedEngine, plantedBug } from "../conformance/planted.ts";

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

export async function serveCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, [HELP_OPTION, { name: "engine", value: true }, { name: "plant", value: true }, { name: "rules", value: false }], "serve");
  if (args.flags.has("help")) {
    io.out(SERVE_HELP + "\n");
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError(`serve: unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const name = args.values.get("engine") ?? "impl";
  if (!ENGINE_NAMES.includes(name)) throw new UsageError(`--engine: expected ${ENGINE_NAMES.join(" or ")}, got ${JSON.stringify(name)}`);
  const rules = args.flags.has("rules");
  if (rules && name !== "spec") throw new UsageError("--rules: only the spec engine reports rules");
  const plant = args.values.get("plant");
  const bug = plant === undefined ? undefined : plantedBug(plant);
  if (plant !== undefined && bug === undefined) throw new UsageError(`--plant: expected one of ${PLANTED_BUGS.map((b) => b.name).join(", ")}, got ${JSON.stringify(plant)}`);
  const inner = createEngine(name, { rules });
  const engine = bug === undefined ? inner : new PlantedEngine(inner, bug);
  const label = bug === undefined ? name : `${name} with ${bug.name}`;
  await serveEngine(engine, servedCapabilities(label, rules), process.stdin, process.stdout);
  return 0;
}
