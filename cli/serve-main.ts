// `ringspec serve` without the rest of the CLI (cli/bin.js): engine processes start in a fraction
// of a second. Like main.ts, an unexpected error is one line on stderr and exit status 3.
import { processIo, type Io } from "./io.ts";
import { serveCommand } from "./serve.ts";

export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  try {
    return await serveCommand(argv.slice(1), io);
  } catch (e) {
    io.err(`ringspec: internal error: ${(e instanceof Error ? `${e.name}: ${e.message}` : String(e)).replace(/\s*\n\s*/g, " ")}`);
    return 3;
  }
}
