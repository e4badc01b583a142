import { tmpdir } from "node:os";
import { join } from "node:path";
import { configDefaults, defineConfig } from "vitest/config";

// Where each test file leaves the rules it exercised (test/setup.ts) for the rule-coverage
// reporter (test/reporters/rule-coverage.ts); the worker processes inherit it.
process.env.RINGSPEC_RULES_DIR = join(tmpdir(), `ringspec-rules-${process.pid}`);

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests that need QEMU and Bochs run with `npm run test:emulators` (vitest.emulators.config.ts).
    exclude: [...configDefaults.exclude, "test/emulators/**"],
    // The machine has 2 cores; more workers only add start-up cost.
    maxWorkers: 2,
    // Test files share their worker's module instances instead of importing every module again
    // per file: importing was over half of the suite's time (one measurement at load 16: 333 s
    // isolated, 165–186 s shared; the same 1,555 tests). Tests keep their state in their files;
    // the modules' own caches (decode and page-walk memos, compiled-block factories) are
    // invisible by design, each with its invisibility test.
    isolate: false,
    // A young generation of 64 MB a semi-space (V8's default is 16): the engines and lockstep
    // comparisons allocate states and pages by the million, and half as many scavenges cost less
    // (test/impl + kernel/demo: 34.3 and 36.3 CPU s without, 31.8 and 35.1 with, alternated, load 9-11).
    execArgv: ["--max-semi-space-size=64"],
    testTimeout: 60_000,
    // Compile failures in impl's block compiler fail the test that hit them; the rules each file
    // exercises are recorded (test/setup.ts).
    setupFiles: ["test/setup.ts"],
    // A complete passing run refreshes conformance/rule-coverage.json (and fails if it changed).
    reporters: ["default", "./test/reporters/rule-coverage.ts"],
    // Transformed modules are kept on disk between runs (node_modules/.experimental-vitest-cache,
    // keyed by each file's content and the config), so a rerun does not transform ~500 files again.
    // No plugin here reads anything beyond the file it transforms, which is what the key covers.
    experimental: { fsModuleCache: true },
  },
});
