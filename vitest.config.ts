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
    testTimeout: 60_000,
    // Compile failures in impl's block compiler fail the test that hit them; the rules each file
    // exercises are recorded (test/setup.ts).
    setupFiles: ["test/setup.ts"],
    // A complete passing run refreshes conformance/rule-coverage.json (and fails if it changed).
    reporters: ["default", "./test/reporters/rule-coverage.ts"],
  },
});
