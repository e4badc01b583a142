// Writes that change the paging entries translating the writer's own accesses, checked against
// spec/ in every impl/ configuration (docs/model-choices.md: no TLB is observable — every access
// walks the page tables as they are when it is made — and one access translates all its pages
// before writing any byte).
//
// SGDT/SIDT store their 10-byte (64-bit mode) operand as one access. Issue 8, divergence A: impl
// wrote the limit, then translated the base's bytes again — after the limit had rewritten the PML4
// entry translating them — and retired with only the limit stored (the #PF of the second
// translation was raised, never delivered: CR2 = 0x1007).
//
// An event-delivery frame is five or six accesses (the pushes, SS first): each push walks after
// the pushes above it. impl translated every slot before writing any (one translation when the
// frame lies in one page), so a push that rewrote the PTE of the frame's own page went unnoticed.
import { describe, expect, it } from "vitest";
import { baseMemory, kernel, layoutState, read64, RAX } from "./helpers.ts";
import { expectAgreesWithSpec } from "./against-spec.ts";

/** The shared layout: GDT base 0x8000, limit 0x5f; IDT base 0x9000, limit 0xfff; PML4 at 0x1000. */
const GDT_BASE = 0x8000n, GDT_LIMIT = 0x5fn, IDT_BASE = 0x9000n, IDT_LIMIT = 0xfffn;

function bytesAt(s: { memory: ReadonlyMap<number, Uint8Array> }, at: bigint, n: number): number[] {
  const out: number[] = [];
  for (let k = 0n; k < BigInt(n); k++) out.push(s.memory.get(Number((at + k) >> 12n))?.[Number((at + k) & 0xfffn)] ?? 0);
  return out;
}

describe("SGDT/SIDT: one 10-byte access (issue 8, divergence A)", () => {
  for (const [name, reg, base, limit] of [["sgdt", 0, GDT_BASE, GDT_LIMIT], ["sidt", 1, IDT_BASE, IDT_LIMIT]] as const) {
    it(`${name} 0x1005(%rax) writing over the PML4 entry that translates its own bytes stores all 10 bytes`, () => {
      // 0f 01 /r with mod = 10, rm = rax, disp32 0x1005: bytes 0x1005..0x100e. The limit lands in
      // bytes 5–6 of PML4E 0 (bits 40–55: reserved bit 46 set), so a walk after it would fault.
      const state = kernel([0x0f, 0x01, 0x80 | (reg << 3), 0x05, 0x10, 0x00, 0x00, 0xf4], undefined, { [RAX]: 0n });
      const pml4e = read64(state, 0x1000n);
      const { state: after } = expectAgreesWithSpec(state, 1);
      expect(after.rip).toBe(0x10007n);
      expect(after.cr2).toBe(0n);
      const expected = [Number(limit & 0xffn), Number(limit >> 8n), ...Array.from({ length: 8 }, (_, k) => Number((base >> BigInt(8 * k)) & 0xffn))];
      expect(bytesAt(after, 0x1005n, 10)).toEqual(expected);
      // Bytes 0–4 of PML4E 0 keep their value but for the accessed bit (bit 5) the walk set.
      const before = bytesAt({ memory: state.memory }, 0x1000n, 5);
      expect(bytesAt(after, 0x1000n, 5)).toEqual([before[0]! | 0x20, ...before.slice(1)]);
      expect(pml4e).not.toBe(read64(after, 0x1000n));
    });
  }

  it("the run after the store matches spec too (the broken PML4 entry faults the next fetch)", () => {
    const state = kernel([0x0f, 0x01, 0x80, 0x05, 0x10, 0x00, 0x00, 0xf4], undefined, { [RAX]: 0n });
    expectAgreesWithSpec(state, 6);
  });

  it("an operand crossing into a page whose PTE its first bytes overwrite: written through the first translations", () => {
    // The 4 KiB table at 0x4000 maps 6–8 MiB. Linear page 0x7fe000 is mapped onto that table itself
    // (PTE 0x1fe at 0x4ff0), so its last 8 bytes are PTE 0x1ff, which maps the next page 0x7ff000 to
    // frame 0x50000. SGDT at 0x7feffa writes its limit (0x005f) into bytes 2–3 of that PTE (address
    // bits 31:16: the page would now map frame 0x5f0000) and its base across the page end.
    const setup = (m: { write64(a: bigint, v: bigint): void }) => {
      m.write64(0x4ff0n, 0x4003n);
      m.write64(0x4ff8n, 0x50003n);
    };
    const state = kernel([0x0f, 0x01, 0x80, 0xfa, 0x0f, 0x00, 0x00, 0xf4], setup, { [RAX]: 0x7fe000n },
      { gdtr: { base: 0xffff_8877_6655_8000n, limit: 0x5f } });
    const { state: after } = expectAgreesWithSpec(state, 1);
    expect(after.rip).toBe(0x10007n);
    // Limit at frame 0x4ffa, base bytes 0–3 at 0x4ffc, bytes 4–7 at frame 0x50000 (the translation
    // made before any byte was written), none at 0x5f0000.
    expect(bytesAt(after, 0x4ffan, 6)).toEqual([0x5f, 0x00, 0x00, 0x80, 0x55, 0x66]);
    expect(read64(after, 0x4ff8n)).toBe(0x6655_8000_005f_0063n);
    expect(bytesAt(after, 0x50000n, 4)).toEqual([0x77, 0x88, 0xff, 0xff]);
    expect(after.memory.has(0x5f0)).toBe(false);
    expectAgreesWithSpec(state, 4);
  });
});

describe("event-delivery frames whose pushes rewrite the paging entries of later slots", () => {
  it("the RSP push rewrites the PTE of the frame's own page (not present): the RFLAGS push faults, nothing is kept, #DF, shutdown", () => {
    // Linear page 0x7fe000 is mapped onto the page table at 0x4000 (PTE 0x1fe at 0x4ff0); RSP0 =
    // 0x7ff000, so a #UD from ring 3 pushes SS at 0x4ff8, RSP at 0x4ff0 — over PTE 0x1fe itself,
    // with the user RSP 0x210000 (P = 0) — then RFLAGS at 0x7fefe8, whose walk now fails.
    const m = baseMemory();
    m.write64(0x4ff0n, 0x4003n);
    m.write64(0xa004n, 0x7ff000n);
    m.write(0x200000n, [0x0f, 0x0b]);
    const state = layoutState(m, { user: true });
    const { state: after, reason } = expectAgreesWithSpec(state, 3);
    expect(reason).toBe("shutdown");
    expect(after.cr2).toBe(0x7fefe8n);
    // The pushes were undone (the walks' A and D bits stay).
    expect(read64(after, 0x4ff0n)).toBe(0x4063n);
    expect(read64(after, 0x4ff8n)).toBe(0n);
  });

  it("the SS push rewrites the PTE of its own page: the RSP push lands in the newly mapped frame", () => {
    // Linear 0x601000 is mapped onto the page table at 0x4000 (PTE 1 at 0x4008) and 0x600000 onto
    // frame 0x50000 (PTE 0). RSP0 = 0x601010: SS is pushed at 0x601008 = PTE 1, so the page now maps
    // frame 0 (selector 0x23: P, R/W); the RSP push at 0x601000 walks again and lands at physical 0.
    const m = baseMemory();
    m.write64(0x4000n, 0x50003n);
    m.write64(0x4008n, 0x4003n);
    m.write64(0xa004n, 0x601010n);
    m.write(0x200000n, [0x0f, 0x0b]);
    const state = layoutState(m, { user: true });
    const { state: after } = expectAgreesWithSpec(state, 2);
    expect(after.rip).toBe(0xb061n);
    expect(read64(after, 0x4008n) & 0xffn).toBe(0x23n | 0x40n);
    expect(read64(after, 0x0n)).toBe(0x210000n);
    expect(read64(after, 0x50ff8n)).toBe(0x10202n);
  });
});
