#!/usr/bin/env node
// The `ringspec` command: loads the TypeScript sources (cli/launch.js: a cached compiled copy, or
// tsx), then runs the CLI.
import { launch } from "./launch.js";

// `serve` is started once per engine process by campaigns: it loads only what it serves.
const { main } = await launch(new URL(process.argv[2] === "serve" ? "./serve-main.ts" : "./main.ts", import.meta.url));
process.exitCode = await main(process.argv.slice(2));
