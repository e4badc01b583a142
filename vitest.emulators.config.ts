import { defineConfig } from "vitest/config";

// `npm run test:emulators`: the tests that run QEMU and Bochs (Debian's qemu-system-x86, bochs,
// bochsbios, vgabios). Each file starts its own emulator processes; files run one at a time.
export default defineConfig({
  test: {
    include: ["test/emulators/**/*.test.ts"],
    maxWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 900_000,
  },
});
