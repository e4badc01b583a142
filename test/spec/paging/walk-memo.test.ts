// The walk memo (spec/paging/walk-memo.ts) remembers faulting walks too: a remembered #PF is the
// walk's own (rule, error code, the access's linear address for CR2), and a write to a table the
// walk read is seen at the next access.
import { describe, expect, it } from "vitest";
import { accessOf } from "../../../spec/paging/access.ts";
import { walk } from "../../../spec/paging/translate.ts";
import { walkRemembered } from "../../../spec/paging/walk-memo.ts";
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
