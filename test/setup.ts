// Runs before every test file (vitest.config.ts setupFiles).
import { setCompileFailureHandler } from "../impl/compile/compile.ts";

// A block impl's compiler cannot compile runs interpreted in production (correct, slower, one
// warning); in the tests it is a bug in a template and fails the test that hit it.
setCompileFailureHandler((error, source) => {
  throw new Error(`impl: generated block source did not compile (${error.name}: ${error.message}):\n${source}`);
});
