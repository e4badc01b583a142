// Compatibility-mode segmentation on impl/ (docs/model-choices.md "Compatibility-mode
// segmentation"): the usable and type checks that come before the limit check, in every impl/
// configuration and on spec/. A CPL 3 program in a 32-bit code segment (selector 0x1b) reads through a segment
// register whose hidden part the test sets; a fault goes through the layout's IDT stubs.
import { describe, expect, it } from "vitest";
import type { ArchState, Segment } from "../../contract/state.ts";
import { baseMemory, layoutState } from "./helpers.ts";
import { runAllWithSpec as runAll } from "./against-spec.ts";

/** The handler RIP after vector v's `hlt` (the shared layout's stubs). */
const handled = (v: number) => 0xb000n + 16n * BigInt(v) + 1n;
const GP = handled(13), SS = handled(12);

/** CPL 3 compatibility-mode state running `code` (then `jmp .`), with segment fields `segs`. */
function compat(code: number[], segs: Partial<Pick<ArchState, "ds" | "ss" | "es">>): ArchState {
  const m = baseMemory();
  m.write(0x200000n, [...code, 0xeb, 0xfe]);
  const s = layoutState(m, { user: true });
  return { ...s, cs: { ...s.cs, selector: 0x1b, l: 0, db: 1 }, gpr: s.gpr.map((v, i) => (i === 3 ? 0x200100n : v)), ...segs };
}

/** A flat 4 GiB hidden part of `base` with descriptor fields `patch`. */
const flat = (base: Segment, patch: Partial<Segment>): Segment =>
  ({ ...base, base: 0n, limit: 0xffffffff, type: 3, s: 1, dpl: 3, present: 1, db: 1, g: 1, unusable: 0, ...patch });

describe("compatibility mode: usable and type checks before the limit", () => {
  // mov eax, [ebx] (8B 03); mov eax, [ebx] through SS (36 8B 03)
  const readDs = [0x8b, 0x03, 0x90];
  const readSs = [0x36, 0x8b, 0x03];

  it("a flat data segment reads (the control case)", () => {
    const s = compat(readDs, {});
    expect(runAll({ ...s, ds: flat(s.ds, {}) }, 1).state.rip).toBe(0x200002n);
  });

  it("a hidden part with S = 0 (a system descriptor only a state file can put there) allows no access: #GP(0), through SS #SS(0)", () => {
    const s = compat(readDs, {});
    expect(runAll({ ...s, ds: flat(s.ds, { s: 0, type: 2 }) }, 2).state.rip).toBe(GP);
    const t = compat(readSs, {});
    expect(runAll({ ...t, ss: flat(t.ss, { s: 0, type: 2 }) }, 2).state.rip).toBe(SS);
  });

  it("an unusable hidden part faults whatever its type; execute-only code cannot be read, readable code can", () => {
    const s = compat(readDs, {});
    expect(runAll({ ...s, ds: flat(s.ds, { unusable: 1 }) }, 2).state.rip).toBe(GP);
    expect(runAll({ ...s, ds: flat(s.ds, { type: 0x8 }) }, 2).state.rip).toBe(GP);
    expect(runAll({ ...s, ds: flat(s.ds, { type: 0xa }) }, 1).state.rip).toBe(0x200002n);
  });

  it("a far pointer (m16:32) is checked against the limit as one 6-byte operand before its offset is paged", () => {
    // ljmp *(%ebx) with EBX = 0xfffffffb: the offset's bytes lie within the 4 GiB limit (on an
    // unmapped page), the selector's do not → #GP(0), not #PF (conform --seed 4242, case 29742).
    const s = compat([0xff, 0x2b, 0x90], {});
    const state = { ...s, ds: flat(s.ds, {}), gpr: s.gpr.map((v, i) => (i === 3 ? 0xfffffffbn : v)) };
    const out = runAll(state, 2).state;
    expect(out.rip).toBe(GP);
    expect(out.cr2).toBe(s.cr2);
  });
});
