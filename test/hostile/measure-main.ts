// The work of measure.mjs: each job is a ringspec command line, run through the CLI's main() with
// a collecting Io (what it would print), timed and measured. The CLI's main() comes from
// measure.mjs, loaded as cli/bin.js loads it (this module imports only its type: its compiled
// copy is this file alone, and the CLI's is the one bin.js uses).
import { readFileSync } from "node:fs";
import type { main as cliMain } from "../../cli/main.ts";

export interface Job {
  readonly name: string;
  readonly argv: readonly string[];
  /** Keep the whole stdout text (else only its size and last line). */
  readonly keepStdout?: boolean;
}

export interface Measured {
  readonly name: string;
  readonly status: number;
  readonly stdoutBytes: number;
  readonly stdoutLastLine: string;
  readonly stdout?: string;
  readonly stderr: string[];
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** Peak resident set size of this process so far, in MiB (it only grows: jobs run in order). */
  readonly maxRssMiB: number;
}

export async function measureJobs(jobsFile: string, main: typeof cliMain): Promise<void> {
  const jobs = JSON.parse(readFileSync(jobsFile, "utf8")) as Job[];
  for (const job of jobs) {
    const out: string[] = [];
    let stdoutBytes = 0;
    let tail = "";
    const stderr: string[] = [];
    const before = process.resourceUsage();
    const started = performance.now();
    const status = await main(job.argv, {
      out: (text) => {
        stdoutBytes += text.length;
        if (job.keepStdout === true) out.push(text);
        tail = (tail + text).slice(-4096);
      },
      err: (line) => {
        stderr.push(line);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const after = process.resourceUsage();
    const lines = tail.split("\n").filter((l) => l !== "");
    const result: Measured = {
      name: job.name,
      status,
      stdoutBytes,
      stdoutLastLine: lines[lines.length - 1] ?? "",
      ...(job.keepStdout === true ? { stdout: out.join("") } : {}),
      stderr,
      seconds,
      cpuSeconds: (after.userCPUTime + after.systemCPUTime - before.userCPUTime - before.systemCPUTime) / 1e6,
      maxRssMiB: after.maxRSS / 1024,
    };
    process.stdout.write(JSON.stringify(result) + "\n");
  }
}
