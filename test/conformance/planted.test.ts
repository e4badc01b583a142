// The campaign finds planted bugs: impl/ with one classic emulator bug on top. Each must be
// detected, grouped under its rule, shrunk to at most 3 instructions, and the printed replay
// command must reproduce it. One of them (SERVED) is served over the JSON-lines protocol (`ringspec
// serve --plant BUG`, a process for the campaign, its replay and a vectors check); the others run
// the same broken engine in this process (`conform --plant BUG`): what they check is the campaign,
// not the process boundary, which the served one and test/engines/process.test.ts cover.
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import type { Io } from "../../cli/io.ts";
import { PLANTED_BUGS } from "../../conformance/planted.ts";
import { liveProcessEngines } from "../../engines/process/engine.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

async function cli(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: Io = { out: (t) => (stdout += t), err: (l) => (stderr += l + "\n") };
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    return { code: await main(argv, io), stdout, stderr };
  } finally {
    process.chdir(cwd);
  }
}

/** The words of a command line printed with single quotes (cli/trace.ts shellQuote). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)) words.push(m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!);
  return words;
}

/** A seed whose first cases of the bug's family reach it (found by running them). */
const PLAN: Readonly<Record<string, { seed: number; runs: number }>> = {
  "sysret-no-r11-mask": { seed: 4, runs: 4 },
  "iretq-same-level-keeps-ss-rsp": { seed: 2, runs: 12 },
  "delivery-no-stack-alignment": { seed: 2, runs: 3 },
  "ist-off-by-one": { seed: 4, runs: 3 },
  "swapgs-noop": { seed: 3, runs: 4 },
  "pf-error-code-no-us": { seed: 1, runs: 3 },
};

/** The bug whose engine is served by `ringspec serve --plant` in a process of its own. */
const SERVED = "swapgs-noop";

describe("planted bugs are found, shrunk, grouped under their rule and replayed", () => {
  for (const bug of PLANTED_BUGS) {
    it(`${bug.rule}: ${bug.name} (${bug.description})`, async () => {
      const plan = PLAN[bug.name]!;
      const served = bug.name === SERVED;
      const engine = served ? ["--b", "process", "--cmd", `node cli/bin.js serve --engine impl --plant ${bug.name}`] : ["--b", "impl", "--plant", bug.name];
      const family = bug.families[0]!;
      const common = [...engine, "--families", family, "--seed", String(plan.seed), "--expect-deviation", "HLT-06"];
      const run = await cli(["conform", ...common, "--runs", String(plan.runs), "--shrink-per-rule", "1", "--json"]);
      expect(run.code, run.stderr).toBe(1);
      const result = JSON.parse(run.stdout) as { engines: { b: string }; outcomes: { index: number; status: string; rule: string; size: number; replay: string; detail?: { shrunk: boolean; case: string } }[] };
      expect(result.engines.b).toBe(`impl with ${bug.name}`);
      const failures = result.outcomes.filter((o) => o.status === "fail");
      expect(failures.length).toBeGreaterThan(0);
      // Every divergence of the broken engine is grouped under the bug's rule.
      expect(new Set(failures.map((o) => o.rule))).toEqual(new Set([bug.rule]));
      const shrunk = failures.find((o) => o.detail !== undefined)!;
      expect(shrunk.size, shrunk.detail!.case).toBeLessThanOrEqual(3);

      // The printed command replays exactly that case: the same rule, shrunk the same way. For
      // one bug it runs with --save-cases DIR added (an output option: the replay's own lines and
      // last line are checked all the same), which saves the minimal case as a vector whose
      // expected section is the spec's result.
      const words = shellWords(shrunk.replay);
      expect(words.slice(0, 3)).toEqual(["npx", "ringspec", "conform"]);
      const dir = served ? mkdtempSync(join(tmpdir(), "ringspec-planted-")) : undefined;
      const replay = await cli([...words.slice(2), ...(dir === undefined ? [] : ["--save-cases", dir])]);
      expect(replay.code, replay.stderr).toBe(1);
      expect(replay.stdout).toContain(`FAIL case ${shrunk.index} (${family}): ${bug.rule} — `);
      expect(replay.stdout).toContain(`minimal case: ${shrunk.size} `);
      expect(replay.stdout.trim().split("\n").at(-1)).toBe("0 passed, 1 failed");
      if (dir !== undefined) {
        const file = /saved: (\S+)/.exec(replay.stdout)![1]!;
        expect((await cli(["vectors", "check", file, "--engine", "spec"])).stdout).toBe("1 passed, 0 failed\n");
        const broken = await cli(["vectors", "check", file, ...engine.map((w) => w.replace("--b", "--engine"))]);
        expect(broken.code).toBe(1);
        expect(broken.stdout).toMatch(/msrs\.KERNEL_GS_BASE: expected 0x30000, got 0x0/);
        rmSync(dir, { recursive: true, force: true });
      }
      expect(liveProcessEngines()).toBe(0);
    }, 90_000);
  }
});
