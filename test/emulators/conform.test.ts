// A short `ringspec conform` campaign against QEMU and against Bochs, run as a user runs it (the
// CLI in a child process): it writes its deviation report (Markdown, JSON beside it), and every
// divergence it finds falls under a rule group of the committed table. The campaign uses the
// committed table's seed, families and expectations, so its cases are the first cases of that
// campaign.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { deviationTable } from "./tables.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CASES = 6;
const scratch = mkdtempSync(join(tmpdir(), "ringspec-conform-emulators-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function conform(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "cli/bin.js"), "conform", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("a short conform campaign against each emulator", () => {
  for (const [engine, name] of [["qemu", "qemu-7.2"], ["bochs", "bochs-2.7"]] as const) {
    it(`${engine}: writes a report whose divergences the committed table names`, async () => {
      const table = deviationTable(name);
      const report = join(scratch, `${name}.md`);
      const r = await conform([
        "--b", engine, "--runs", String(CASES), "--seed", String(table.seed), "--families", table.families.join(","),
        "--no-shrink", ...[...table.expected].flatMap((e) => ["--expect-deviation", e]), "--report", report, "--json",
      ]);
      // 0: every case agreed; 1: divergences or engine errors (the emulator's table).
      expect([0, 1], r.stderr).toContain(r.code);
      const result = JSON.parse(r.stdout) as { cases: number; outcomes: { index: number; status: string; rule?: string; gap?: string }[] };
      expect(result.cases).toBe(CASES);
      expect(readFileSync(report, "utf8")).toMatch(new RegExp(`^# Deviations: ${table.engine.split(" ")[0]}`, "m"));
      const json = JSON.parse(readFileSync(join(scratch, `${name}.json`), "utf8")) as { format: string; cases: number };
      expect(json.format).toBe("ringspec-deviations/1");
      expect(json.cases).toBe(CASES);
      for (const o of result.outcomes) {
        if (o.status !== "fail" && o.status !== "expected") continue;
        expect([...table.rules], `case ${o.index} diverges under ${o.gap ?? o.rule}, which ${table.file} does not name`).toContain(o.gap ?? o.rule);
      }
    }, 900_000);
  }
});
