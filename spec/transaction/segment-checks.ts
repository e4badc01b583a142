// Segmentation in compatibility mode (CS.L = 0 in IA-32e mode): the checks every access through a
// segment register makes before its linear address exists — SDM Vol. 3A §5.3 "Limit Checking",
// §5.4.1 "Null Segment Selector Checking", §5.5 "Privilege Levels" / type checking (§5.4), §3.4.5
// (expand-down segments); Vol. 1 §6.2.3 (stack-address size from SS.B). In 64-bit mode none of this
// applies (GLOBAL-03): only FS and GS contribute a base. docs/model-choices.md, row
// "Compatibility-mode segmentation", is the contract with impl/.
import type { Segment } from "../../contract/state.ts";
import { defineRules, type RuleId } from "../rules/rule.ts";
import type { AccessKind } from "../paging/access.ts";

export const SEGMENT_CHECK_RULES = defineRules([
  { id: "SEG-CHECK-UNUSABLE", description: "compatibility mode: an access through a segment register whose hidden part is unusable (a NULL selector was loaded): #GP(0), #SS(0) through SS", source: "SDM Vol. 3A §5.4.1; Vol. 3A §6.15 (#SS)" },
  { id: "SEG-CHECK-TYPE", description: "compatibility mode: a write to a code segment or a read-only data segment (the read of a read-modify-write included), or a read of an execute-only code segment: #GP(0), #SS(0) through SS", source: "SDM Vol. 3A §5.4.1 (type checking)" },
  { id: "SEG-CHECK-LIMIT", description: "compatibility mode: an access whose bytes leave the segment (expand-up: EA + size − 1 > limit; expand-down: EA ≤ limit, or EA + size − 1 above 0xFFFFFFFF (B = 1) / 0xFFFF (B = 0)): #GP(0), #SS(0) through SS", source: "SDM Vol. 3A §5.3, §3.4.5.1" },
  { id: "SEG-CHECK-LINEAR", description: "compatibility mode: linear address = (segment base + effective address) mod 2^32, FS and GS included (the low 32 bits of their base)", source: "SDM Vol. 3A §3.4.4, §5.3; Vol. 1 §3.3.7" },
  { id: "SEG-CHECK-FETCH", description: "compatibility mode: fetching an instruction byte at EIP + i beyond the CS limit: #GP(0), before that byte's page walk", source: "SDM Vol. 3A §5.3" },
  { id: "SEG-CHECK-STACK", description: "compatibility mode: the stack pointer is ESP when SS.B = 1 (a new value is written zero-extended into RSP) and SP when SS.B = 0 (RSP bits 63:16 kept)", source: "SDM Vol. 1 §6.2.3; Vol. 3A §3.4.5 (B flag)" },
]);

/** The highest offset an expand-down data segment allows: by its B flag. */
function expandDownTop(seg: Segment): bigint {
  return seg.db === 1 ? 0xffff_ffffn : 0xffffn;
}

/** S = 1, not code, E bit (type bit 2). */
function isExpandDown(seg: Segment): boolean {
  return seg.s === 1 && (seg.type & 8) === 0 && (seg.type & 4) !== 0;
}

/** Whether the segment's type allows `kind` (a read-modify-write asks for "write"). */
function typeAllows(seg: Segment, kind: AccessKind): boolean {
  if (seg.s !== 1) return false;
  const code = (seg.type & 8) !== 0;
  switch (kind) {
    case "execute": return code;
    case "read": return !code || (seg.type & 2) !== 0;
    case "write": return !code && (seg.type & 2) !== 0;
  }
}

/**
 * The rule a compatibility-mode access of `size` bytes at offset `ea` (0 ≤ ea < 2^32) in `seg`
 * fails, or null when it passes. The order is the model's (all three raise the same fault).
 */
export function segmentCheckFailure(seg: Segment, ea: bigint, size: number, kind: AccessKind): RuleId | null {
  if (seg.unusable !== 0) return "SEG-CHECK-UNUSABLE";
  if (!typeAllows(seg, kind)) return "SEG-CHECK-TYPE";
  const last = ea + BigInt(size - 1);
  const limit = BigInt(seg.limit);
  const inside = isExpandDown(seg) ? ea > limit && last <= expandDownTop(seg) : last <= limit;
  return inside ? null : "SEG-CHECK-LIMIT";
}

/** SEG-CHECK-LINEAR: the 32-bit linear address of offset `ea` in `seg`. */
export function compatibilityLinear(seg: Segment, ea: bigint): bigint {
  return (seg.base + ea) & 0xffff_ffffn;
}

/** SEG-CHECK-STACK: the stack-pointer mask of SS in compatibility mode. */
export function stackWidthMask(ss: Segment): bigint {
  return ss.db === 1 ? 0xffff_ffffn : 0xffffn;
}

/** SEG-CHECK-STACK: RSP after the stack pointer of width `mask` becomes `sp`. */
export function withStackPointer(rsp: bigint, sp: bigint, mask: bigint): bigint {
  return mask === 0xffff_ffffn ? sp & mask : (rsp & ~mask) | (sp & mask);
}
