// impl/ is an independent implementation: it may import only spec/format/ from spec/.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|js|mjs|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Module specifiers of static imports, re-exports, dynamic imports and requires. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?["']([^"']+)["']/g,
    /\bexport\s+(?:type\s+)?[^'";]*?\s+from\s+["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

describe("impl/ import boundary", () => {
  const implFiles = files(join(ROOT, "impl"));

  it("has source files to check", () => {
    expect(implFiles.length).toBeGreaterThan(5);
  });

  it("imports nothing from spec/ except spec/format/", () => {
    const bad: string[] = [];
    for (const f of implFiles) {
      for (const spec of specifiers(readFileSync(f, "utf8"))) {
        if (!spec.startsWith(".")) continue;
        const target = relative(ROOT, resolve(dirname(f), spec)).split("\\").join("/");
        if (target.startsWith("spec/") && !target.startsWith("spec/format/")) bad.push(`${relative(ROOT, f)} → ${spec}`);
        if (!target.startsWith("spec/") && !target.startsWith("impl/")) bad.push(`${relative(ROOT, f)} → ${spec} (outside impl/)`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("the checker recognises a forbidden import", () => {
    const text = `import { step } from "../spec/step/step.ts";\nexport { x } from "../spec/machine/machine.ts";`;
    expect(specifiers(text)).toEqual(["../spec/step/step.ts", "../spec/machine/machine.ts"]);
  });
});
