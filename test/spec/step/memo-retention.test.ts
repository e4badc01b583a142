// The walk memo (spec/paging/walk-memo.ts) and the code-page cache (spec/step/fetch.ts) are
// module-level and outlive the runs that fill them. They recognise a run's memory draft by its
// serial number, never by holding it: a draft reaches the whole memory it was made from, so a
// reference kept in a memo would keep the last run's memory alive after the run ended. Checked
// structurally: after runs, nothing reachable from what the memos keep is a MemoryDraft or a
// PhysicalMemory (page objects — the frozen table pages the memo compares by identity — are
// bytes, not a memory).
import { describe, expect, it } from "vitest";
import { run } from "../../../spec/index.ts";
import { MemoryDraft, PhysicalMemory } from "../../../spec/machine/physical-memory.ts";
import { rememberedWalkEntries } from "../../../spec/paging/walk-memo.ts";
import { keptCodePages } from "../../../spec/step/fetch.ts";
import { INTEL } from "../../../contract/profile.ts";
import { kernelMachine, withCode, withRegs } from "../../helpers/fixture.ts";

/** Every object reachable from `roots` through properties, array elements and Map/Set entries
 *  (typed arrays are leaves: bytes). */
function reachable(roots: readonly object[]): Set<object> {
  const seen = new Set<object>();
  const stack: unknown[] = [...roots];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    if (ArrayBuffer.isView(v)) continue;
    if (v instanceof Map) for (const [key, value] of v) stack.push(key, value);
    else if (v instanceof Set) for (const e of v) stack.push(e);
    else for (const key of Reflect.ownKeys(v)) stack.push((v as Record<PropertyKey, unknown>)[key]);
  }
  return seen;
}

describe("memos that outlive a run keep no memory draft", () => {
  it("after runs that fetch, read and write, the walk memo and the code-page cache hold no MemoryDraft or PhysicalMemory", () => {
    // A loop in 64-bit mode that reads and writes a qword on the stack page: code fetches and data
    // accesses through remembered walks.
    const loop = withCode(kernelMachine(), [
      0x48, 0x8b, 0x04, 0x24, // 0: mov rax, [rsp]
      0x48, 0xff, 0xc0, //       4: inc rax
      0x48, 0x89, 0x04, 0x24, // 7: mov [rsp], rax
      0xeb, 0xf3, //            11: jmp 0
    ]);
    for (let i = 0; i < 3; i++) {
      const r = run(withRegs(loop, { rax: BigInt(i) }), { profile: INTEL, maxSteps: 200 });
      expect(r.steps).toBe(200);
    }
    const walks = rememberedWalkEntries();
    const pages = keptCodePages();
    // The memos were used (else the check below would hold vacuously).
    expect(walks.length).toBeGreaterThan(0);
    expect(pages.length).toBeGreaterThan(0);
    const kept = [...reachable(walks), ...reachable(pages)];
    expect(kept.filter((o) => o instanceof MemoryDraft)).toEqual([]);
    expect(kept.filter((o) => o instanceof PhysicalMemory)).toEqual([]);
  });
});
