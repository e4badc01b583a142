#!/usr/bin/env node
// The `ringspec` command: registers tsx so Node 20 can load the TypeScript sources, then runs the CLI.
import { register } from "tsx/esm/api";

register();
// `serve` is started once per engine process by campaigns: it loads only what it serves.
const { main } = process.argv[2] === "serve" ? await import("./serve-main.ts") : await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
