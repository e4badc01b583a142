import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The machine has 2 cores; more workers only add start-up cost.
    maxWorkers: 2,
    testTimeout: 60_000,
  },
});
