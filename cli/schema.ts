// `ringspec schema [files|trace|divergence|protocol]`: the JSON Schema of the file formats
// (contract/json-schema.ts), of a trace line (trace/json.ts), of a divergence document
// (trace/model/divergence.ts), or of the JSON-lines engine protocol (engines/process/protocol.ts).
import { parseArgs, HELP_OPTION, UsageError } from "./args.ts";
import type { Io } from "./io.ts";
import { jsonSchemaText } from "../contract/json-schema.ts";
import { traceJsonSchemaText } from "../trace/json.ts";
import { divergenceJsonSchemaText } from "../trace/model/divergence.ts";
import { protocolJsonSchemaText } from "../engines/process/protocol.ts";

export const SCHEMA_HELP = `Usage: ringspec schema [files|trace|divergence|protocol] (or --protocol)

Prints a JSON Schema (draft 2020-12), generated from the zod schemas that validate the format:
  files (default)  ringspec-vector/1 and ringspec-state/1 files (contract/schema.ts); the
                   committed copy is contract/schema.json:
                     node cli/bin.js schema > contract/schema.json
                   The schema cannot say that msrs.FS_BASE/GS_BASE must equal sregs.fs.base/gs.base,
                   nor that a state must be inside the model (IA-32e mode, modelled CR4/EFER bits);
                   ringspec checks those on loading.
  trace            one line of \`ringspec run FILE --trace --json\` (trace/json.ts); the committed
                   copy is trace/trace-record.schema.json:
                     node cli/bin.js schema trace > trace/trace-record.schema.json
  divergence       a ringspec-divergence/1 document, what \`ringspec trace DOC --html OUT\` draws
                   (trace/model/divergence.ts); the committed copy is
                   trace/divergence.schema.json:
                     node cli/bin.js schema divergence > trace/divergence.schema.json
  protocol         the JSON-lines engine protocol (engines/process/protocol.ts, docs/protocol.md):
                   requests and answers; the committed copy is engines/process/protocol.schema.json:
                     node cli/bin.js schema --protocol > engines/process/protocol.schema.json`;

const SCHEMAS: Readonly<Record<string, () => string>> = {
  files: jsonSchemaText,
  trace: traceJsonSchemaText,
  divergence: divergenceJsonSchemaText,
  protocol: protocolJsonSchemaText,
};

export function schemaCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, [HELP_OPTION, { name: "protocol", value: false }], "schema");
  if (args.flags.has("help")) {
    io.out(SCHEMA_HELP + "\n");
    return 0;
  }
  if (args.positionals.length > 1 || (args.flags.has("protocol") && args.positionals.length > 0))
    throw new UsageError(`schema: expected at most one of files, trace, divergence, protocol (got ${args.positionals.length + (args.flags.has("protocol") ? 1 : 0)} arguments)`);
  const which = args.flags.has("protocol") ? "protocol" : (args.positionals[0] ?? "files");
  const schema = SCHEMAS[which];
  if (schema === undefined) throw new UsageError(`schema: expected files, trace, divergence or protocol, got ${JSON.stringify(which)}`);
  io.out(schema());
  return 0;
}
