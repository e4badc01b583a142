import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests that need QEMU and Bochs run with `npm run test:emulators` (vitest.emulators.config.ts).
    exclude: [...configDefaults.exclude, "test/emulators/**"],
    // The machine has 2 cores; more workers only add start-up cost.
    maxWorkers: 2,
    testTimeout: 60_000,
    // Compile failures in impl's block compiler fail the test that hit them (test/setup.ts).
    setupFiles: ["test/setup.ts"],
  },
});
