// Deviation reports: a campaign's divergences grouped by the spec rule at which the engines part
// ways, each group with its count, the rule's one-line description, what the values say, and the
// smallest replayable example (an emulator's deviation table, made by the tool). Markdown for
// people, JSON beside it for programs, and for each group's example a `ringspec-divergence/1`
// document that `ringspec trace FILE --html OUT` draws (trace/model/divergence.ts).
import { ruleById } from "../../spec/index.ts";
import { gapByName } from "./gaps.ts";
import { TRANSITION_RULE_IDS } from "./coverage.ts";
import { DIVERGENCE_FORMAT, type DivergenceDocumentIn } from "../../trace/model/divergence.ts";
import type { CampaignResult } from "./result.ts";
import { displayText } from "../../contract/text.ts";

type Outcome = CampaignResult["outcomes"][number];

export interface ReportGroup {
  readonly rule: string;
  readonly description: string;
  readonly source: string | null;
  readonly expected: boolean;
  readonly count: number;
  readonly families: readonly string[];
  /** The smallest example: a shrunk case when there is one. */
  readonly example: Outcome;
  readonly signatures: number;
}

export interface ErrorGroup {
  readonly side: "a" | "b";
  readonly kind: string;
  readonly count: number;
  readonly example: Outcome;
}

export interface Report {
  readonly format: "ringspec-deviations/1";
  readonly engines: CampaignResult["engines"];
  readonly campaign: CampaignResult["campaign"];
  readonly cases: number;
  readonly divergences: number;
  readonly groups: readonly ReportGroup[];
  readonly errors: readonly ErrorGroup[];
  readonly expected: readonly { readonly rule: string; readonly reason: string; readonly seen: number }[];
  readonly not_compared: readonly string[];
  readonly coverage: CampaignResult["coverage"];
  readonly interrupted: boolean;
}

function smaller(x: Outcome, y: Outcome): boolean {
  const dx = x.detail !== undefined;
  const dy = y.detail !== undefined;
  if (dx !== dy) return dx;
  return x.size !== y.size ? x.size < y.size : x.index < y.index;
}

export function buildReport(result: CampaignResult): Report {
  const groups = new Map<string, Outcome[]>();
  for (const o of result.outcomes) {
    if (o.status !== "fail" && o.status !== "expected") continue;
    // Divergences a known gap explains are grouped under the gap.
    const key = o.status === "expected" && o.gap !== undefined ? o.gap : o.rule!;
    const list = groups.get(key) ?? [];
    list.push(o);
    groups.set(key, list);
  }
  const expectedRules = new Set(result.campaign.expected.map((e) => e.rule));
  const reportGroups: ReportGroup[] = [...groups.entries()]
    .map(([rule, list]) => {
      const info = ruleById(rule);
      const gap = gapByName(rule);
      return {
        rule,
        description: gap?.description ?? info?.description ?? "no rule of the spec: the engines part ways where the spec reports none",
        source: gap !== undefined ? "known gap (conformance/campaign/gaps.ts)" : (info?.source ?? null),
        expected: expectedRules.has(rule),
        count: list.length,
        families: [...new Set(list.map((o) => o.family))].sort(),
        example: list.reduce((best, o) => (smaller(o, best) ? o : best)),
        signatures: new Set(list.map((o) => o.signature)).size,
      };
    })
    .sort((x, y) => Number(x.expected) - Number(y.expected) || y.count - x.count || x.rule.localeCompare(y.rule));
  const errors = new Map<string, Outcome[]>();
  for (const o of result.outcomes) {
    if (o.status !== "error") continue;
    const key = `${o.side}:${o.error_kind}`;
    errors.set(key, [...(errors.get(key) ?? []), o]);
  }
  return {
    format: "ringspec-deviations/1",
    engines: result.engines,
    campaign: result.campaign,
    cases: result.cases,
    divergences: result.divergences,
    groups: reportGroups,
    errors: [...errors.values()].map((list) => ({ side: list[0]!.side!, kind: list[0]!.error_kind ?? "error", count: list.length, example: list[0]! })),
    expected: result.campaign.expected.map((e) => ({
      rule: e.rule,
      reason: e.reason,
      seen: result.outcomes.filter((o) => o.status === "expected" && (o.gap ?? o.rule) === e.rule).length,
    })),
    not_compared: result.not_compared,
    coverage: result.coverage,
    interrupted: result.interrupted,
  };
}

// ------------------------------------------------------------------------------------------------
// The divergence document of an example (for the divergence page)

type Detail = {
  step: number; event_a: string; event_b: string; differences: { field: string; a: unknown; b: unknown }[];
  last_steps: unknown[]; rules: string[]; not_compared: string[]; states: { a: unknown; b: unknown };
};

export function divergenceDocument(result: CampaignResult, o: Outcome): DivergenceDocumentIn | null {
  const d = o.detail as Detail | undefined;
  if (d === undefined) return null;
  return {
    format: DIVERGENCE_FORMAT,
    title: `${result.engines.a} and ${result.engines.b} part ways at ${o.rule} (case ${o.index}, ${o.family}), step ${d.step}`,
    source: `ringspec conform, seed ${result.campaign.seed}`,
    engines: result.engines,
    step: d.step,
    events: { a: d.event_a, b: d.event_b },
    states: d.states as DivergenceDocumentIn["states"],
    differences: d.differences as DivergenceDocumentIn["differences"],
    last_steps: d.last_steps as DivergenceDocumentIn["last_steps"],
    replay: o.replay ?? "",
    rules: d.rules,
    ...(d.not_compared.length === 0 ? {} : { not_compared: d.not_compared }),
  };
}

// ------------------------------------------------------------------------------------------------
// Markdown

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;

export function reportMarkdown(report: Report, links: ReadonlyMap<string, string> = new Map()): string {
  const r = report;
  const lines: string[] = [];
  const c = r.campaign;
  lines.push(`# Deviations: ${r.engines.b} against ${r.engines.a}`, "");
  lines.push(
    `${r.cases} cases (seed ${c.seed}; families ${c.families.join(", ")}; profile ${c.profile}; ${c.comparison} comparison${c.every > 1 ? `, every ${c.every} steps` : ""}${c.shard.count > 1 ? `; shard ${c.shard.index}/${c.shard.count}` : ""})${r.interrupted ? " — **interrupted**: what was found so far" : ""}.`,
    "",
  );
  const unexpected = r.groups.filter((g) => !g.expected);
  lines.push(`**${unexpected.reduce((n, g) => n + g.count, 0)} divergences** under ${unexpected.length} rule${unexpected.length === 1 ? "" : "s"}${r.errors.length > 0 ? `, **${r.errors.reduce((n, e) => n + e.count, 0)} engine errors**` : ""}.`, "");
  if (r.groups.length > 0) {
    lines.push("| rule | count | what the rule says | what differs (smallest example) | example | replay |", "|---|---|---|---|---|---|");
    for (const g of r.groups) {
      const e = g.example;
      const size = `${e.size} ${e.size === 1 ? e.unit.replace(/s$/, "") : e.unit}${e.detail !== undefined && e.detail.shrunk === true ? " (shrunk)" : ""}`;
      const page = links.get(g.rule);
      lines.push(
        `| ${g.rule}${g.expected ? " (expected)" : ""} | ${g.count} | ${cell(g.description)} | ${cell(e.why ?? "")} | case ${e.index} (${e.family}), ${size}${page === undefined ? "" : `, [divergence](${page})`} | ${code(e.replay ?? "")} |`,
      );
    }
    lines.push("");
  }
  if (r.errors.length > 0) {
    lines.push("## Engine errors", "", "| engine | kind | count | first case | why |", "|---|---|---|---|---|");
    for (const e of r.errors) lines.push(`| ${e.side === "a" ? r.engines.a : r.engines.b} | ${e.kind} | ${e.count} | ${e.example.index} (${e.example.family}) | ${cell(e.example.reason ?? "")} |`);
    lines.push("");
  }
  if (r.expected.length > 0) {
    lines.push("## Expected deviations", "", "| rule | seen | why expected |", "|---|---|---|");
    for (const e of r.expected) lines.push(`| ${e.rule} | ${e.seen === 0 ? "not seen" : e.seen} | ${cell(e.reason)} |`);
    lines.push("");
  }
  for (const g of r.groups) {
    const e = g.example;
    const d = e.detail as (Detail & { case: string; instruction: { bytes: string; disassembly: string } | null }) | undefined;
    lines.push(`## ${g.rule}${g.expected ? " (expected)" : ""}: ${g.count} case${g.count === 1 ? "" : "s"}`, "");
    lines.push(`${g.description}${g.source === null ? "" : ` (${g.source})`}. Families: ${g.families.join(", ")}; ${g.signatures} distinct signature${g.signatures === 1 ? "" : "s"}.`, "");
    lines.push(`Smallest example: case ${e.index} (${e.family}), ${e.size} ${e.size === 1 ? e.unit.replace(/s$/, "") : e.unit}: ${e.why ?? ""}`, "");
    if (d !== undefined) {
      lines.push("```", d.case, "```", "");
      lines.push(`At step ${d.step}${d.instruction === null ? "" : `, ${code(d.instruction.disassembly)}${d.instruction.bytes === "" ? "" : ` (${d.instruction.bytes})`}`}:`, "");
      lines.push(`- ${r.engines.a}: ${d.event_a}`, `- ${r.engines.b}: ${d.event_b}`, "");
      lines.push(`| field | ${r.engines.a} | ${r.engines.b} |`, "|---|---|---|");
      for (const x of d.differences.slice(0, 40)) lines.push(`| ${x.field} | ${cell(String(x.a))} | ${cell(String(x.b))} |`);
      if (d.differences.length > 40) lines.push(`| … ${d.differences.length - 40} more | | |`);
      lines.push("");
      if (d.rules.length > 0) lines.push(`Rules the spec exercised at that step: ${d.rules.join(", ")}.`, "");
    }
    lines.push(`Replay: ${code(e.replay ?? "")}`, "");
  }
  if (r.not_compared.length > 0) lines.push(`Not compared (an engine cannot observe them): ${r.not_compared.join(", ")}.`, "");
  if (r.coverage !== null) {
    const cov = r.coverage;
    const pct = (x: number, y: number) => (y === 0 ? "0" : ((100 * x) / y).toFixed(1));
    lines.push("## Rule coverage", "");
    lines.push(`${cov.hit.length} of ${cov.rules} rules exercised (${pct(cov.hit.length, cov.rules)}%); transition rules ${cov.transition_hit} of ${cov.transition_rules} (${pct(cov.transition_hit, cov.transition_rules)}%).`, "");
    const hit = new Set(cov.hit);
    const families = new Map<string, { total: number; hit: number; missed: string[] }>();
    for (const id of TRANSITION_RULE_IDS) {
      const family = id.split("-")[0]!;
      const f = families.get(family) ?? { total: 0, hit: 0, missed: [] };
      f.total++;
      if (hit.has(id)) f.hit++;
      else f.missed.push(id);
      families.set(family, f);
    }
    lines.push("| rule family | exercised | not reached |", "|---|---|---|");
    for (const [family, f] of families) lines.push(`| ${family} | ${f.hit} of ${f.total} (${pct(f.hit, f.total)}%) | ${f.missed.join(", ")} |`);
    lines.push("");
  }
  // Engine names, reasons and messages come from the engines (another process, an emulator): no
  // control character, ANSI escape or bidirectional override reaches a terminal showing the report.
  return displayText(lines.join("\n"), { lines: true });
}
