// The committed deviation tables (docs/deviations/*.json, made by `npm run deviations` with
// `ringspec conform --report`): what the emulator tests hold the emulators to. A vector result
// or a campaign divergence on an emulator is accepted only when its rule group is in the table.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";

const DEVIATIONS = fileURLToPath(new URL("../../docs/deviations/", import.meta.url));

const Table = z.object({
  format: z.literal("ringspec-deviations/1"),
  engines: z.object({ a: z.string(), b: z.string() }),
  campaign: z.object({ seed: z.number(), families: z.array(z.string()), expected: z.array(z.object({ rule: z.string() }).passthrough()) }).passthrough(),
  cases: z.number(),
  groups: z.array(z.object({ rule: z.string(), count: z.number(), expected: z.boolean() }).passthrough()),
});

export interface DeviationTable {
  readonly file: string;
  readonly engine: string;
  readonly seed: number;
  readonly families: readonly string[];
  readonly cases: number;
  /** Every rule group of the table (deviations, and the expected groups with their reasons). */
  readonly rules: ReadonlySet<string>;
  /** The rules and known gaps the campaign expected (docs/deviations/expectations.json). */
  readonly expected: ReadonlySet<string>;
}

export function deviationTable(name: "qemu-7.2" | "bochs-2.7"): DeviationTable {
  const file = `${DEVIATIONS}${name}.json`;
  const t = Table.parse(JSON.parse(readFileSync(file, "utf8")));
  return { file, engine: t.engines.b, seed: t.campaign.seed, families: t.campaign.families, cases: t.cases, rules: new Set(t.groups.map((g) => g.rule)), expected: new Set(t.campaign.expected.map((e) => e.rule)) };
}
