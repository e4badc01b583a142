// JUnit XML of a campaign: one test case per case, failures and errors with their rule, reason
// and replay command. Written whole at the end (also after Ctrl-C), so it is always well-formed.
import type { CampaignResult } from "./result.ts";

const escape = (s: string) =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function junitXml(result: CampaignResult): string {
  const byIndex = new Map(result.outcomes.map((o) => [o.index, o]));
  const passed: number[] = [];
  for (const [lo, hi] of result.passed_ranges) for (let i = lo; i <= hi; i++) passed.push(i);
  const indices = [...new Set([...passed, ...byIndex.keys()])].sort((a, b) => a - b);
  const suite = `ringspec conform ${result.engines.a} vs ${result.engines.b}`;
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${escape(suite)}" tests="${indices.length}" failures="${result.divergences}" errors="${result.errors}" skipped="${result.skipped + result.expected_deviations}" time="${result.elapsed_s.toFixed(3)}">`,
    `  <testsuite name="${escape(suite)}" tests="${indices.length}" failures="${result.divergences}" errors="${result.errors}" skipped="${result.skipped + result.expected_deviations}" time="${result.elapsed_s.toFixed(3)}">`,
    `    <properties><property name="seed" value="${result.campaign.seed}"/><property name="families" value="${escape(result.campaign.families.join(","))}"/><property name="interrupted" value="${result.interrupted}"/></properties>`,
  ];
  for (const i of indices) {
    const o = byIndex.get(i);
    const name = `case ${i}${o === undefined ? "" : ` (${o.family})`}`;
    if (o === undefined || o.status === "pass") {
      lines.push(`    <testcase classname="conform" name="${escape(name)}"/>`);
      continue;
    }
    const replay = o.replay === undefined ? "" : `\nreplay: ${o.replay}`;
    lines.push(`    <testcase classname="conform.${escape(o.family)}" name="${escape(name)}">`);
    if (o.status === "fail") lines.push(`      <failure message="${escape(`${o.rule}: ${o.why ?? ""}`)}" type="${escape(o.rule ?? "divergence")}">${escape(`step ${o.step}: ${o.signature ?? ""}${replay}`)}</failure>`);
    else if (o.status === "error") lines.push(`      <error message="${escape(`${o.side === "a" ? result.engines.a : result.engines.b}: ${o.reason ?? ""}`)}" type="${escape(o.error_kind ?? "error")}">${escape(`${o.reason ?? ""}${replay}`)}</error>`);
    else lines.push(`      <skipped message="${escape(o.status === "expected" ? `expected deviation ${o.rule}` : (o.reason ?? "skipped"))}"/>`);
    lines.push(`    </testcase>`);
  }
  lines.push(`  </testsuite>`, `</testsuites>`, "");
  return lines.join("\n");
}
