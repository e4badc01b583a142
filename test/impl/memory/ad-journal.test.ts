// The A/D journal (impl/memory/ad-journal.ts): a step that ends `unsupported` leaves the machine as
// it was, including the accessed bits its instruction fetch's page walk set.
import { describe, expect, it } from "vitest";
import { kernel, stateText } from "../helpers.ts";
import { runAllWithSpec as runAll } from "../against-spec.ts";

describe("A/D journal", () => {
  it("an unsupported instruction on a page whose PTE has A = 0 leaves A clear", () => {
    // PTE of 0x600000 (page table at 0x4000) → frame 0x700, present and writable, A = D = 0;
    // the code there is SHLD (outside the model). RIP starts at 0x600000.
    const s = kernel([0xf4], (m) => {
      m.write64(0x4000n, 0x700003n);
      m.write(0x700000n, [0x0f, 0xa4, 0xc0, 0x01]);
    }, {}, { rip: 0x600000n });
    const out = runAll(s, 10);
    expect(out.stop.reason).toBe("unsupported");
    expect(out.stop.steps).toBe(0);
    expect(out.text).toBe(stateText(s)); // every A bit the walk set is undone
  });
});
