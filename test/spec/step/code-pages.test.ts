// The fetch's code-page cache (spec/step/fetch.ts) is invisible: a run — which keeps one memory
// draft across its steps — sees code rewritten in the page it runs from, and a page-table entry
// rewritten under the page it runs from, at the very next fetch, as single steps do.
import { describe, expect, it } from "vitest";
import { run, step } from "../../../spec/index.ts";
import type { Machine } from "../../../spec/machine/machine.ts";
import { RAX } from "../../../spec/machine/registers.ts";
import { INTEL } from "../../../contract/profile.ts";
import { kernelMachine, withBytes, withCode, withRegs } from "../../helpers/fixture.ts";
import { ALL, FRAME, LINEAR, P, PT, RW, kernelWith, le64, writeEntry } from "../paging/tables.ts";

const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const u64 = (v: bigint): number[] => Array.from(le64(v));

/** RAX after `n` steps, by a run and by single steps. */
function raxAfter(m: Machine, n: number): { run: bigint; steps: bigint } {
  const r = run(m, { profile: INTEL, maxSteps: n });
  expect(r.steps).toBe(n);
  let s = m;
  for (let i = 0; i < n; i++) s = step(s, { profile: INTEL }).state;
  return { run: r.state.gpr[RAX]!, steps: s.gpr[RAX]! };
}

describe("code pages a run fetches from", () => {
  it("code rewritten in the page being run is fetched anew (a loop that increments its own immediate)", () => {
    const m = withCode(kernelMachine(), [
      0xb8, ...u32(1), //       0: mov eax, 1
      0xfe, 0x05, ...u32(-10), // 5: inc byte [rip - 10]   (eax's immediate)
      0xeb, 0xf3, //            11: jmp 0
    ]);
    // Each pass loads the immediate the pass before incremented: 1, 2, 3, 4.
    expect(raxAfter(m, 1)).toEqual({ run: 1n, steps: 1n });
    expect(raxAfter(m, 7)).toEqual({ run: 3n, steps: 3n });
    expect(raxAfter(m, 10)).toEqual({ run: 4n, steps: 4n });
  });

  it("a page-table entry rewritten under the code page takes effect at the next fetch (no TLB)", () => {
    const page = LINEAR & ~0xfffn;
    const frame2 = 0x7655_0000n;
    // LINEAR's page maps FRAME; the page after it maps the page table (a supervisor page: SMAP),
    // so the code can rewrite LINEAR's PTE (index 9, at RCX) to map frame2 (RBX) instead. The
    // first pass runs the loop once; the second rewrites the PTE, and what follows comes from
    // frame2: its jmp 0, then its mov eax, 2 at offset 0, where the first pass ran mov eax, 1.
    let m = kernelWith();
    m = { ...m, memory: writeEntry(m.memory, PT + 10n * 8n, PT | P | RW), rip: page };
    m = withRegs(m, { rbx: frame2 | ALL, rcx: page + 0x1000n + 9n * 8n, rdx: 0n });
    m = withBytes(m, FRAME & ~0xfffn, [
      0xb8, ...u32(1), //   0: mov eax, 1
      0xff, 0xc2, //        5: inc edx
      0x83, 0xfa, 0x02, //  7: cmp edx, 2
      0x75, 0x0d, //       10: jne 25
      0x48, 0x89, 0x19, // 12: mov [rcx], rbx
      0xe9, ...u32(-20), // 15: jmp 0
      0x90, 0x90, 0x90, 0x90, 0x90, // 20: nop ×5
      0xe9, ...u32(-30), // 25: jmp 0
    ]);
    m = withBytes(m, frame2, [0xb8, ...u32(2), 0xf4]); // 0: mov eax, 2; hlt
    m = withBytes(m, frame2 + 15n, [0xe9, ...u32(-20)]); // 15: jmp 0
    // Pass 1: 5 instructions; pass 2: 6 (the last, jmp 0, from frame2); then mov eax, 2.
    expect(raxAfter(m, 11)).toEqual({ run: 1n, steps: 1n });
    expect(raxAfter(m, 12)).toEqual({ run: 2n, steps: 2n });
  });
});
