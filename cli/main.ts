// The `ringspec` command line. Every error is one line on stderr and an exit status; a stack trace
// never reaches the user.
import { UsageError, engineHelp } from "./args.ts";
import { InputError, oneLine } from "./input.ts";
import { processIo, type Io } from "./io.ts";
// Commands are loaded when they run: a process loads only what its command needs (start-up is
// most of a short command's time, and tests and campaigns start many).

export const MAIN_HELP = `Usage: ringspec COMMAND [options]

Commands:
  run FILE              run a state or vector file; print the final state and the stop reason
  trace FILE            draw every user/kernel transition of a run as one HTML page (or JSON)
  vectors check PATH... run test vectors and compare them with their expected results
  vectors generate      write vectors from the spec's generated cases (see vectors --help)
  conform               lockstep campaigns between two engines: divergences shrunk, grouped by
                        rule, replayable (see conform --help)
  serve                 serve an engine over the JSON-lines engine protocol (see serve --help)
  rules                 rule registry and rule coverage (see rules --help)
  schema                print the JSON Schema of the vector and state file formats
  bench                 run the benchmarks (bench/index.ts)
  kernel IMAGE          boot a kernel and stream its console; kernel check IMAGE: check its
                        context switches and grade it (see kernel --help)

Options shared by run and vectors check:
  --profile intel|amd   vendor behaviour (default: the file's profile, else intel)
  --max-steps N         step limit (default: a vector's limits.max_steps, else 1,000,000)
  --timeout SECONDS     wall-clock limit per run (default 60, at most 86400)
${engineHelp()}

\`ringspec COMMAND --help\` describes each command. Exit status: 0 success, 1 a run or vector
failed, 2 bad arguments or unusable input, 3 an internal error.`;

/** Runs the CLI; returns the exit status. Writes through `io` (the process streams by default). */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  if (io === processIo) {
    // `ringspec run x | head` closes the pipe early: stop writing quietly instead of crashing.
    process.stdout.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") throw e;
    });
  }
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        io.err(`ringspec: expected a command (see ringspec --help)`);
        return 2;
      case "--help":
      case "-h":
      case "help":
        io.out(MAIN_HELP + "\n");
        return 0;
      case "run":
        return await (await import("./run.ts")).runCommand(rest, io);
      case "vectors":
        return await (await import("./vectors.ts")).vectorsCommand(rest, io);
      case "rules":
        return await (await import("./rules.ts")).rulesCommand(rest, io);
      case "schema":
        return await (await import("./schema.ts")).schemaCommand(rest, io);
      case "bench":
        return await (await import("./bench.ts")).benchCommand(rest, io);
      case "trace":
        return await (await import("./trace.ts")).traceCommand(rest, io);
      case "kernel":
        return await (await import("./kernel.ts")).kernelCommand(rest, io);
      case "conform":
        return await (await import("./conform.ts")).conformCommand(rest, io);
      case "serve":
        return await (await import("./serve.ts")).serveCommand(rest, io);
      default:
        io.err(`ringspec: unknown command ${JSON.stringify(command)} (see ringspec --help)`);
        return 2;
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof InputError) {
      io.err(`ringspec: ${oneLine(e.message)}`);
      return 2;
    }
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    io.err(`ringspec: internal error: ${oneLine(message)}`);
    return 3;
  }
}
