import fc from "fast-check";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { configDefaults, defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

// Where each test file leaves the rules it exercised (test/setup.ts) for the rule-coverage
// reporter (test/reporters/rule-coverage.ts); the worker processes inherit it.
process.env.RINGSPEC_RULES_DIR = join(tmpdir(), `ringspec-rules-${process.pid}`);

/**
 * The files that take longest, longest first (medians of full runs on 2 cores, session 8: the
 * lead's quiet warm figures, 060de97, then the order of two runs at load 12-16). Two workers take
 * files from one queue; a long file taken last leaves the other worker idle until it ends. Vitest
 * orders by the durations of the last run, and without them (a fresh clone, `npm ci`: its cache
 * lives in node_modules) by file size, which puts these late.
 */
const HEAVY_FIRST = [
  "test/conformance/planted.test.ts",
  "test/kernel/c-kernel.test.ts",
  "test/impl/engine/trace.test.ts",
  "test/conformance/campaign.test.ts",
  "test/hostile/cli-hostile.test.ts",
  "test/impl/hostile.test.ts",
  "test/impl/compile/wasm-loop.test.ts",
  "test/cli/conform.test.ts",
  "test/cli/launch.test.ts",
  "test/cli/cli.test.ts",
  "test/impl/differential.test.ts",
  "test/engines/host/lifecycle.test.ts",
  "test/spec/purity.test.ts",
  "test/engines/process.test.ts",
  "test/kernel/demo.test.ts",
  "test/contract/memory-regions.test.ts",
  "test/conformance/lockstep.test.ts",
  "test/impl/compile/loops.test.ts",
  "test/impl/blocks/block-cache.test.ts",
  "test/engines/gdb/bridge.test.ts",
  "test/impl/engine/trace-transitions.test.ts",
  "test/kernel/untrusted.test.ts",
];

/**
 * The seed of a random file order (`npm run test:busy`, test/busy.sh): RINGSPEC_SHUFFLE_SEED, or
 * vitest's own seed with `--sequence.shuffle` (which also shuffles the tests within each file).
 * Only these two shuffle files: the object form `--sequence.shuffle.files` does not, under this
 * sequencer (vitest then keeps the sequencer set here and turns `shuffle` into the `tests` flag,
 * so `shuffle` is not `true` here). Files share their worker's modules (isolate: false): a random
 * order shows a file that depends on what another left behind.
 */
function fileShuffleSeed(sequence: { shuffle?: unknown; seed?: number }): number | undefined {
  const given = process.env.RINGSPEC_SHUFFLE_SEED;
  if (given !== undefined && given !== "") {
    if (!/^[0-9]+$/.test(given)) throw new Error(`RINGSPEC_SHUFFLE_SEED: expected a whole number, got ${JSON.stringify(given)}`);
    return Number(given);
  }
  return sequence.shuffle === true ? sequence.seed : undefined;
}

/** `items` in a random order drawn from `seed` (fast-check's shuffle): the same seed, the same order. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  return fc.sample(fc.shuffledSubarray([...items], { minLength: items.length }), { seed, numRuns: 1 })[0]!;
}

/** Vitest's order when it knows every file's last duration; else HEAVY_FIRST, then vitest's order;
 *  a random one with a shuffle seed (fileShuffleSeed). */
class HeavyFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const path = (f: TestSpecification) => relative(root, f.moduleId).split("\\").join("/");
    const seed = fileShuffleSeed(this.ctx.config.sequence);
    // From the files by name, so that a seed gives the same order whatever order they came in.
    if (seed !== undefined) return shuffled([...files].sort((x, y) => path(x).localeCompare(path(y), "en")), seed);
    const sorted = await super.sort(files);
    if (sorted.every((f) => this.ctx.cache.getFileTestResults(`${f.project.name}:${path(f)}`) !== undefined)) return sorted;
    const rank = (f: TestSpecification) => {
      const i = HEAVY_FIRST.indexOf(path(f));
      return i < 0 ? HEAVY_FIRST.length : i;
    };
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

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
    // The longest files first, also on a fresh clone (HEAVY_FIRST).
    sequence: { sequencer: HeavyFilesFirst },
    // A complete passing run refreshes conformance/rule-coverage.json (and fails if it changed).
    reporters: ["default", "./test/reporters/rule-coverage.ts"],
    // Transformed modules are kept on disk between runs (node_modules/.experimental-vitest-cache,
    // keyed by each file's content and the config), so a rerun does not transform ~500 files again.
    // No plugin here reads anything beyond the file it transforms, which is what the key covers.
    experimental: { fsModuleCache: true },
  },
});
