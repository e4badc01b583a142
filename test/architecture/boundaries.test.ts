// Each part of the project says what it may import; this test enforces it. The point of the two
// engines is that they are independent: spec/ and impl/ share only contract/.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Per top-level folder: the folders it may import from, and the npm packages (node: builtins are
 *  named as "node:"). A folder not listed here may import anything. */
const ALLOWED: Readonly<Record<string, { readonly parts: readonly string[]; readonly packages: readonly string[]; readonly within?: Readonly<Record<string, string>> }>> = {
  // The contract between engines: types, schemas, JSON conversion, the Engine interface.
  contract: { parts: ["contract"], packages: ["zod"] },
  // The reference model: pure functions over the contract's state.
  spec: { parts: ["spec", "contract"], packages: ["ts-pattern"] },
  // The optimized emulator, written independently of spec/.
  impl: { parts: ["impl", "contract"], packages: [] },
  // The guest kit: the assembler over iced-x86 and the guest layout, used by everything that builds guests.
  guest: { parts: ["guest", "contract"], packages: ["iced-x86"] },
  // The engine registry, the one runner loop, adapters for engines in other processes.
  // zod validates what the emulators send (QMP, the migration stream's description, debugger output).
  engines: { parts: ["engines", "contract", "spec", "impl", "guest", "trace"], packages: ["node:", "zod"] },
  // Traces as data and their renderers; zod defines the JSON-lines record and the divergence
  // document (external formats); node:fs reads the HTML page's assets (trace/html).
  trace: { parts: ["trace", "contract"], packages: ["iced-x86", "zod", "node:"] },
  // The teaching kernels, loader, devices and grader. Of spec/ only the context-switch checker
  // (spec/context/).
  kernel: {
    parts: ["kernel", "contract", "guest", "engines", "trace", "spec"],
    packages: ["zod", "iced-x86", "node:"],
    within: { spec: "spec/context/" },
  },
};

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
export function specifiers(text: string): string[] {
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

/** The package an import names ("zod", "@scope/x", "node:" for any builtin). */
function packageOf(specifier: string): string {
  if (specifier.startsWith("node:")) return "node:";
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function violations(part: string): string[] {
  const rule = ALLOWED[part]!;
  const bad: string[] = [];
  for (const f of files(join(ROOT, part))) {
    for (const spec of specifiers(readFileSync(f, "utf8"))) {
      const from = relative(ROOT, f);
      if (spec.startsWith(".")) {
        const target = relative(ROOT, resolve(dirname(f), spec)).split("\\").join("/");
        const top = target.split("/")[0]!;
        const within = rule.within?.[top];
        if (!rule.parts.includes(top) || (within !== undefined && !`${target}/`.startsWith(within))) bad.push(`${from} → ${spec}`);
      } else if (!rule.packages.includes(packageOf(spec))) bad.push(`${from} → ${spec} (package)`);
    }
  }
  return bad;
}

describe("import boundaries between the parts", () => {
  for (const part of Object.keys(ALLOWED)) {
    it(`${part}/ imports only ${[...ALLOWED[part]!.parts, ...ALLOWED[part]!.packages].join(", ")}`, () => {
      expect(files(join(ROOT, part)).length).toBeGreaterThanOrEqual(2);
      expect(violations(part)).toEqual([]);
    });
  }

  it("no test imports from bench/ (tests build guests with guest/)", () => {
    const bad = files(join(ROOT, "test")).flatMap((f) =>
      specifiers(readFileSync(f, "utf8"))
        .filter((s) => s.startsWith(".") && relative(ROOT, resolve(dirname(f), s)).split("\\").join("/").startsWith("bench/"))
        .map((s) => `${relative(ROOT, f)} → ${s}`),
    );
    expect(bad).toEqual([]);
  });

  it("the checker recognises every import form", () => {
    const text = `import { step } from "../spec/step/step.ts";\nexport { x } from "../spec/machine/machine.ts";\nconst m = await import("./y.ts");\nimport type { Z } from "zod";`;
    expect(specifiers(text)).toEqual(["../spec/step/step.ts", "zod", "../spec/machine/machine.ts", "./y.ts"]);
    expect(packageOf("node:fs")).toBe("node:");
    expect(packageOf("@types/node/x")).toBe("@types/node");
  });
});
