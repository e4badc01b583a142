import { defineConfig } from "vitest/config";

// `npm run test:browser`: the HTML trace pages in Debian's headless Chromium (test/browser). Not part
// of `npm test`: it needs the chromium package (apt-get install -y chromium).
export default defineConfig({
  test: {
    include: ["test/browser/**/*.spec.ts"],
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
