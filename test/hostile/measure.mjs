#!/usr/bin/env node
// Child process of test/hostile/cli-hostile.test.ts: runs ringspec commands in this process, one
// after another, and reports each one's exit status, output and cost (wall time, CPU time, peak
// resident memory from process.resourceUsage()) as one JSON line on stdout.
// Usage: node test/hostile/measure.mjs JOBS.json
import { launch } from "../../cli/launch.js";

// The CLI loaded as cli/bin.js loads it (cli/launch.js, the same compiled copy), so a measured
// command costs what it costs there.
const { main } = await launch(new URL("../../cli/main.ts", import.meta.url));
const { measureJobs } = await launch(new URL("./measure-main.ts", import.meta.url));
await measureJobs(process.argv[2], main);
