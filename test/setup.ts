// Runs before every test file (vitest.config.ts setupFiles).
import { afterAll } from "vitest";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setCompileAfter, setCompileFailureHandler } from "../impl/compile/compile.ts";
import { collectExecutionCoverage } from "../spec/rules/execution-coverage.ts";
import { recordImpliedRules } from "../spec/rule-catalogue.ts";

// A block impl's compiler cannot compile runs interpreted in production (correct, slower, one
// warning); in the tests it is a bug in a template and fails the test that hit it.
setCompileFailureHandler((error, source) => {
  throw new Error(`impl: generated block source did not compile (${error.name}: ${error.message}):\n${source}`);
});

// impl compiles a block once it has run COMPILE_AFTER times (1024 in production, where compiling
// must pay for itself); the tests compile from the second run, so that their short programs run
// compiled code (test/impl/compile/loops.test.ts also runs at the production threshold).
setCompileAfter(2);

// Rule coverage from execution: every rule the spec exercises while this file's tests run is
// recorded and left for the rule-coverage reporter (test/reporters/rule-coverage.ts), which merges
// the files' sets into conformance/rule-coverage.json. The rules recorded with those hit
// (Rule.recordedWith) are added here, file by file (the same union as adding them to the merged
// set), so that the reporter, in vitest's main process, need not load the spec.
const rulesDir = process.env.RINGSPEC_RULES_DIR;
if (rulesDir !== undefined && rulesDir !== "") {
  const hit = new Set<string>();
  collectExecutionCoverage(hit);
  afterAll(() => {
    collectExecutionCoverage(null);
    recordImpliedRules(hit);
    mkdirSync(rulesDir, { recursive: true });
    writeFileSync(join(rulesDir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`), JSON.stringify([...hit]));
  });
}
