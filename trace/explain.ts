// The trace model as text (`ringspec run FILE --trace --explain`): for each transition, its
// mode-transfer sequence line by line with the rule that decided each, and its stack frame drawn
// as memory cells, for a terminal or an autograder's output.
import type { Frame, SequenceLine, Transition } from "./model/types.ts";

const MARK: Readonly<Record<SequenceLine["status"], string>> = { reported: "•", passed: "✓", failed: "✗", derived: "·" };

function line(l: SequenceLine): string {
  const mark = l.status === "reported" && l.phase === "check" ? "✓" : MARK[l.status];
  const rule = (l.rule ?? "").padEnd(11);
  return `${mark} ${rule} ${l.text}${l.why === undefined ? "" : ` — ${l.why}`}`;
}

/** The frame's cells, highest address first, with the marks beside them. */
export function frameLines(frame: Frame): string[] {
  const out: string[] = [`frame: ${frame.title}`];
  if (frame.cells.length > 0) {
    const width = Math.max(...frame.cells.map((c) => c.address.length), 7);
    out.push(`  ${"address".padEnd(width)}  ${"before".padEnd(19)}  ${"after".padEnd(19)}  slot`);
    for (const c of frame.cells) {
      const marks = frame.marks.filter((m) => m.address === c.address).map((m) => `← ${m.label}`);
      const name = [c.name, c.field === null ? null : `(${c.field})`, c.symbol === undefined ? null : `<${c.symbol}>`].filter((x) => x !== null).join(" ");
      const changed = c.before !== c.after ? "*" : " ";
      out.push(`  ${c.address.padEnd(width)}  ${(c.before ?? "(not mapped)").padEnd(19)} ${changed}${(c.after ?? "(not mapped)").padEnd(19)}  ${[name, ...marks].filter((x) => x !== "").join("  ")}`.trimEnd());
    }
    const elsewhere = frame.marks.filter((m) => !frame.cells.some((c) => c.address === m.address));
    for (const m of elsewhere) out.push(`  ${m.label}: ${m.address}`);
  }
  for (const r of frame.registers) out.push(`  ${r.name.padEnd(14)} ${r.before} → ${r.after}${r.note === undefined ? "" : `  (${r.note})`}`);
  for (const n of frame.notes) out.push(`  ${n}`);
  return out;
}

/** The explanation of one transition, every line indented by `indent`. */
export function explainTransition(t: Transition, indent = "    "): string {
  const out: string[] = [`${t.title}`];
  if (t.failed !== undefined) out.push(`${t.failed.instruction} failed${t.failed.rule === null ? "" : ` at ${t.failed.rule}`}: ${t.failed.why}`);
  for (const part of t.sequence) {
    out.push(part.title);
    for (const l of part.lines) out.push(`  ${line(l)}`);
    if (part.also.length > 0) out.push(`  also: ${part.also.map((a) => (a.count > 1 ? `${a.rule} ×${a.count}` : a.rule)).join(", ")}`);
  }
  for (const f of t.frames) out.push(...frameLines(f));
  return out.map((l) => indent + l).join("\n");
}
