#!/usr/bin/env node
// Child process of test/hostile/cli-hostile.test.ts: runs ringspec commands in this process, one
// after another, and reports each one's exit status, output and cost (wall time, CPU time, peak
// resident memory from process.resourceUsage()) as one JSON line on stdout.
// Usage: node test/hostile/measure.mjs JOBS.json
import { register } from "tsx/esm/api";

register();
const { measureJobs } = await import("./measure-main.ts");
await measureJobs(process.argv[2]);
