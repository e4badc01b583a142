// cli/launch.js: how bin.js and the worker threads load the TypeScript sources. A bundle is built
// once and used while its sources are unchanged; a changed source is seen at the next start;
// import.meta.url keeps naming the source file; the tsx path gives the same result. Run on a
// scratch package (a copy of launch.js, its own cache), so the project's cache is not touched.
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let scratch: string;

function run(env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `const { launch } = await import(${JSON.stringify(pathToFileURL(join(scratch, "cli/launch.js")).href)});
const m = await launch(new URL(${JSON.stringify(pathToFileURL(join(scratch, "src/entry.ts")).href)}));
console.log(JSON.stringify(m.report()));`;
  return new Promise((resolve) => {
    execFile(process.execPath, ["--input-type=module", "-e", script], { cwd: scratch, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr });
    });
  });
}

function writeDep(value: string): void {
  writeFileSync(join(scratch, "src/dep.ts"), `export const value: string = ${JSON.stringify(value)};\nexport const here: string = import.meta.url;\n`);
}

const BUNDLE = () => join(scratch, "node_modules/.cache/ringspec/src-entry-ts.mjs");

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "ringspec-launch-"));
  mkdirSync(join(scratch, "cli"));
  mkdirSync(join(scratch, "src"));
  mkdirSync(join(scratch, "node_modules"));
  copyFileSync(join(ROOT, "cli/launch.js"), join(scratch, "cli/launch.js"));
  copyFileSync(join(ROOT, "tsconfig.json"), join(scratch, "tsconfig.json"));
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ type: "module" }));
  for (const name of ["esbuild", "tsx"]) symlinkSync(join(ROOT, "node_modules", name), join(scratch, "node_modules", name));
  writeFileSync(join(scratch, "src/entry.ts"), `import { value, here } from "./dep.ts";\nexport function report(): { value: string; here: string } {\n  return { value, here };\n}\n`);
  writeDep("first");
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("cli/launch.js", () => {
  it("builds a bundle on the first start, uses it while the sources are unchanged, and rebuilds when one changes", async () => {
    const dep = pathToFileURL(join(scratch, "src/dep.ts")).href;
    const first = await run();
    expect(first.stderr).toBe("");
    expect(JSON.parse(first.stdout)).toEqual({ value: "first", here: dep });
    expect(existsSync(BUNDLE())).toBe(true);
    const built = statSync(BUNDLE()).mtimeMs;

    const again = await run();
    expect(JSON.parse(again.stdout)).toEqual({ value: "first", here: dep });
    expect(statSync(BUNDLE()).mtimeMs).toBe(built);

    // A bundle deleted behind its manifest's back is built again.
    rmSync(BUNDLE());
    expect(JSON.parse((await run()).stdout)).toEqual({ value: "first", here: dep });
    expect(existsSync(BUNDLE())).toBe(true);

    writeDep("second, longer");
    const changed = await run();
    expect(JSON.parse(changed.stdout)).toEqual({ value: "second, longer", here: dep });
    expect(readFileSync(BUNDLE(), "utf8")).toContain("second, longer");
  });

  it("RINGSPEC_LAUNCH=tsx loads the sources through tsx, with the same result", async () => {
    writeDep("third");
    const tsx = await run({ RINGSPEC_LAUNCH: "tsx" });
    expect(tsx.stderr).toBe("");
    expect(JSON.parse(tsx.stdout)).toEqual({ value: "third", here: pathToFileURL(join(scratch, "src/dep.ts")).href });
    // The tsx path leaves the bundle as it was.
    expect(readFileSync(BUNDLE(), "utf8")).not.toContain('"third"');
  });

  it("a source that does not compile falls back to tsx, whose error the process reports", async () => {
    writeFileSync(join(scratch, "src/dep.ts"), "export const value: string = ;\n");
    const broken = await run();
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain("dep.ts");
  });
});
