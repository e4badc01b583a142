// `ringspec vectors generate`: vectors from the spec's runs of generated cases
// (conformance/vector-generate.ts), written one folder per family.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, HELP_OPTION, UsageError, parseProfile } from "./args.ts";
import type { Io } from "./io.ts";
import { FAMILY_NAMES, familyByName, type Family } from "../conformance/campaign/families.ts";
import { generateVector, GENERATOR } from "../conformance/vector-generate.ts";

export const GENERATE_HELP = `Usage: ringspec vectors generate --count N --seed S --out DIR [--families LIST] [--profile intel|amd]

Writes N test vectors (ringspec-vector/1) from the spec's runs of generated cases: case i of the
campaign with seed S (the cases \`ringspec conform --seed S\` runs), one folder per family under
DIR (DIR/FAMILY/FAMILY-S-i.json). Each has its provenance (${GENERATOR}, family, seed, case) and
profile; what the architecture leaves undefined is left out of expected (status flags an
instruction leaves undefined: the run stops after it and RFLAGS is not expected; the hidden part
of NULL data segments; memory not written). Cases that raise events between steps, or whose first
instruction the spec does not model, are skipped (counted on stderr).
\`ringspec vectors check DIR/*/ --engine NAME\` runs them on any engine.

Options:
  --count N             cases to turn into vectors (default 100)
  --seed S              the seed (default 1)
  --out DIR             where to write (required)
  --families LIST       comma-separated, default all: ${FAMILY_NAMES.join(",")}
  --profile intel|amd   vendor (default: each case's own)
  -h, --help            this help`;

export function generateCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, [HELP_OPTION, { name: "count", value: true }, { name: "seed", value: true }, { name: "out", value: true }, { name: "families", value: true }, { name: "profile", value: true }], "vectors generate");
  if (args.flags.has("help")) {
    io.out(GENERATE_HELP + "\n");
    return 0;
  }
  if (args.positionals.length > 0) throw new UsageError(`vectors generate: unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const out = args.values.get("out");
  if (out === undefined || out === "") throw new UsageError("vectors generate: --out DIR is required");
  const countText = args.values.get("count") ?? "100";
  const count = /^[0-9]+$/.test(countText) ? Number(countText) : NaN;
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) throw new UsageError(`--count: expected a whole number from 1 to 1000000, got ${JSON.stringify(countText)}`);
  const seedText = args.values.get("seed") ?? "1";
  if (!/^-?[0-9]{1,10}$/.test(seedText) || String(Number(seedText) | 0) !== String(Number(seedText))) throw new UsageError(`--seed: expected a 32-bit whole number, got ${JSON.stringify(seedText)}`);
  const names = (args.values.get("families") ?? FAMILY_NAMES.join(",")).split(",").map((s) => s.trim()).filter((s) => s !== "");
  const families: Family[] = names.map((n) => {
    const f = familyByName(n);
    if (f === undefined) throw new UsageError(`--families: no family ${JSON.stringify(n)} (families: ${FAMILY_NAMES.join(", ")})`);
    return f;
  });
  const profileText = args.values.get("profile");
  const options = { seed: Number(seedText), families, profile: profileText === undefined ? undefined : parseProfile(profileText), timeoutMs: 60_000 };
  const written = new Map<string, number>();
  const skipped = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const g = generateVector(options, i);
    if (typeof g === "string") {
      skipped.set(g, (skipped.get(g) ?? 0) + 1);
      continue;
    }
    const dir = join(out, g.family);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${g.name}.json`), JSON.stringify(g.vector, null, 1) + "\n");
    written.set(g.family, (written.get(g.family) ?? 0) + 1);
  }
  for (const [why, n] of skipped) io.err(`vectors generate: skipped ${n} case${n === 1 ? "" : "s"}: ${why}`);
  const total = [...written.values()].reduce((a, b) => a + b, 0);
  io.out(`wrote ${total} vectors to ${out} (${[...written].map(([f, n]) => `${f} ${n}`).join(", ")})\n`);
  return 0;
}
