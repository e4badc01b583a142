// `ringspec schema`: the JSON Schema of the file formats (contract/json-schema.ts).
import { parseArgs, HELP_OPTION, UsageError } from "./args.ts";
import type { Io } from "./io.ts";
import { jsonSchemaText } from "../contract/json-schema.ts";

export const SCHEMA_HELP = `Usage: ringspec schema

Prints the JSON Schema (draft 2020-12) of ringspec-vector/1 and ringspec-state/1 files, generated
from the zod schemas in contract/schema.ts. The committed copy is contract/schema.json:
  node cli/bin.js schema > contract/schema.json
The schema cannot say that msrs.FS_BASE/GS_BASE must equal sregs.fs.base/gs.base, nor that a state
must be inside the model (IA-32e mode, modelled CR4/EFER bits); ringspec checks those on loading.`;

export function schemaCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, [HELP_OPTION], "schema");
  if (args.flags.has("help")) {
    io.out(SCHEMA_HELP + "\n");
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError(`schema: takes no arguments (got ${JSON.stringify(args.positionals[0])})`);
  io.out(jsonSchemaText());
  return 0;
}
