// README's complete grading example (the kernel section) is what the tool prints and writes: the
// command shown there is run as written, and its output and results.json must equal the README's
// blocks but for the timings. A change to the checker, the rubric or the demo kernel that changes
// the example fails here until the README is regenerated from the tool.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The first fenced block after `marker`, as lines. */
function blockAfter(marker: string): string[] {
  const at = README.indexOf(marker);
  expect(at, marker).toBeGreaterThan(0);
  const open = README.indexOf("```", at);
  const body = README.indexOf("\n", open) + 1;
  const close = README.indexOf("\n```", body);
  return README.slice(body, close).split("\n");
}

/** Timings vary from run to run; everything else is deterministic. */
const untimed = (text: string) => text.replace(/in [0-9.]+ s, [0-9.]+ MIPS/g, "in T s, M MIPS");

describe("README's grading example", () => {
  it("is the tool's own output: the command as shown prints the text and writes the results.json shown", async () => {
    const [command, ...printed] = blockAfter("<!-- grading-example:command -->");
    expect(command).toMatch(/^\$ npx ringspec kernel check /);
    const args = command!.replace(/^\$ npx ringspec /, "").split(" ");
    const results = join(mkdtempSync(join(tmpdir(), "ringspec-readme-")), "results.json");
    const at = args.indexOf("--gradescope");
    expect(args[at + 1]).toBe("results.json");
    args[at + 1] = results;
    const rubric = args.indexOf("--rubric");
    args[rubric + 1] = join(ROOT, args[rubric + 1]!);

    let stdout = "";
    const stderr: string[] = [];
    const code = await main(args, { out: (t) => (stdout += t), err: (l) => stderr.push(l) });
    expect(stderr).toEqual([]);
    expect(code).toBe(0);
    expect(untimed(stdout)).toBe(untimed(printed.join("\n") + "\n"));

    const shown = JSON.parse(blockAfter("<!-- grading-example:results -->").join("\n"));
    const written = JSON.parse(readFileSync(results, "utf8"));
    const normal = (r: { execution_time: number; output: string; tests: { output: string }[] }) => ({
      ...r, execution_time: typeof r.execution_time, output: untimed(r.output), tests: r.tests.map((t) => ({ ...t, output: untimed(t.output) })),
    });
    expect(normal(written)).toEqual(normal(shown));
    // The example shows what it says: a kernel that prints everything and exits 0, failing (c).
    expect(written.tests.filter((t: { status: string }) => t.status === "failed").map((t: { name: string }) => t.name)).toEqual([
      "(c) user mode runs with the user's GS.base (SWAPGS parity) and IF = 1",
    ]);
  });
});
