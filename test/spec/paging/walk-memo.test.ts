// The walk memo (spec/paging/walk-memo.ts) remembers faulting walks too: a remembered #PF is the
// walk's own (rule, error code, the access's linear address for CR2), and a write to a table the
// walk read is seen at the next access.
import { describe, expect, it } from "vitest";
import { accessOf } from "../../../spec/paging/access.ts";
import { walk } from "../../../spec/paging/translate.ts";
import { rememberedFrame, walkEpoch, walkRemembered } from "../../../spec/paging/walk-memo.ts";
import { patchMachine } from "../../../spec/machine/machine.ts";
import { kernelMachine } from "../../helpers/fixture.ts";

describe("remembered page faults", () => {
  it("the same #PF as the walk for every address in the page; a PTE made present is seen at once", () => {
    const m = kernelMachine();
    const draft = m.memory.draft();
    const read = accessOf("read", "supervisor");
    const write = accessOf("write", "user");
    // 6 MiB: the layout's page table there maps nothing.
    for (const [access, linear] of [[read, 0x60_0010n], [read, 0x60_0ff8n], [write, 0x60_0123n], [write, 0x60_0000n]] as const) {
      const got = walkRemembered(m, draft, linear, access);
      expect(got).toEqual(walk(m, draft, linear, access));
      expect(got).toMatchObject({ kind: "fault", vector: 14, rule: "PF-NP", address: linear });
    }
    // Make the PTE present (a read-only supervisor page at frame 0x3000): the remembered fault is
    // no longer used, and the write access now faults for protection, not presence.
    const entries: bigint[] = [];
    walk(m, draft, 0x60_0000n, read, entries);
    draft.write(entries[entries.length - 1]!, 8, 0x3000n | 1n);
    expect(walkRemembered(m, draft, 0x60_0010n, read)).toMatchObject({ physical: 0x3010n });
    const denied = walkRemembered(m, draft, 0x60_0123n, write);
    expect(denied).toEqual(walk(m, draft, 0x60_0123n, write));
    expect(denied).toMatchObject({ kind: "fault", vector: 14, address: 0x60_0123n });
    expect(denied).not.toMatchObject({ rule: "PF-NP" });
  });
});

describe("walk epochs (a remembered walk checked by one number)", () => {
  it("an epoch names one set of walk registers: a walk remembered under CR3 = A is not used under another CR3 or AC, and is again under A", () => {
    const a = kernelMachine();
    const draft = a.memory.draft();
    const read = accessOf("read", "supervisor");
    const linear = 0x1_0010n; // kernel code: mapped by the layout
    const first = walk(a, draft, linear, read);
    if ("kind" in first) throw new Error("kernel code unmapped");
    // The walk's accessed bits set (as a step sets them): only a walk that sets none is remembered.
    for (const { address, entry } of first.accessedDirty) draft.write(address, 8, entry);
    const frame = Number(first.physical >> 12n);
    expect(walkRemembered(a, draft, linear, read)).toMatchObject({ physical: BigInt(frame) * 4096n + 0x10n });
    const epochA = walkEpoch(a);
    expect(rememberedFrame(a, epochA, draft, 0x10, read)).toBe(frame);
    // Another CR3 (a page of zeros: nothing present there): another epoch, and the walk
    // remembered under A does not answer for it.
    const b = patchMachine(a, { cr3: a.cr3 + 0x10_0000n });
    const epochB = walkEpoch(b);
    expect(epochB).not.toBe(epochA);
    expect(rememberedFrame(b, epochB, draft, 0x10, read)).toBe(-1);
    // RFLAGS.AC set: another epoch too (SMAP reads it), the remembered walk not used.
    const ac = patchMachine(a, { rflags: a.rflags | (1n << 18n) });
    const epochAc = walkEpoch(ac);
    expect(epochAc).not.toBe(epochA);
    expect(rememberedFrame(ac, epochAc, draft, 0x10, read)).toBe(-1);
    // Back to A's values: a new epoch number (never reused), and the walk is used again.
    const epochA2 = walkEpoch(a);
    expect(epochA2).not.toBe(epochA);
    expect(rememberedFrame(a, epochA2, draft, 0x10, read)).toBe(frame);
    // Same values, same epoch, as long as nothing else was seen in between.
    expect(walkEpoch(patchMachine(a, { rip: a.rip + 1n }))).toBe(epochA2);
  });
});
