// The caches stay invisible around the state issue 9 adds: hot loops (compiled after a few runs)
// that change that state mid-run reach the same state uncached, interpreted and compiled, and
// the state the SDM gives (no TLB is observable: a MOV CR3 with the no-flush bit still shows the
// new paging entries; LLDT changes what an LDT selector names; WRGSBASE takes effect for the next
// GS access of a compiled block; SYSENTER/SYSEXIT round trips through the blocks' ends).
import { describe, expect, it } from "vitest";
import { baseMemory, kernel, layoutState } from "./helpers.ts";
import { runAllWithSpec as runAll } from "./against-spec.ts";

const PCIDE = 1n << 17n, FSGSBASE = 1n << 16n;

describe("caches and the state of issue 9", () => {
  it("MOV CR3 with bit 63 (PCIDE = 1) after a PTE change: the next read sees the new frame (no TLB is observable)", () => {
    // loop: mov rbx,[rdx]; add r8,rbx; inc rcx; cmp rcx,50; jne skip; mov qword [0x4000],0x51003;
    // mov cr3,rax; skip: cmp rcx,100; jne loop; hlt
    const code = [0x48, 0x8b, 0x1a, 0x49, 0x01, 0xd8, 0x48, 0xff, 0xc1, 0x48, 0x83, 0xf9, 0x32, 0x75, 0x0f,
      0x48, 0xc7, 0x04, 0x25, 0x00, 0x40, 0x00, 0x00, 0x03, 0x10, 0x05, 0x00, 0x0f, 0x22, 0xd8,
      0x48, 0x83, 0xf9, 0x64, 0x75, 0xdc, 0xf4];
    const setup = (m: { write64(a: bigint, v: bigint): void }) => {
      m.write64(0x4000n, 0x50003n);
      m.write64(0x50000n, 1n);
      m.write64(0x51000n, 2n);
    };
    const s = kernel(code, setup, { 0: (1n << 63n) | 0x1005n, 2: 0x600000n });
    const out = runAll({ ...s, cr3: 0x1005n, cr4: s.cr4 | PCIDE }, 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[8]).toBe(50n * 1n + 50n * 2n);
    expect(out.state.cr3).toBe(0x1005n);
  });

  it("LLDT in a hot loop: later loads of an LDT selector read the new LDT", () => {
    // loop: mov es,di; inc rcx; cmp rcx,30; jne skip; lldt si; skip: cmp rcx,60; jne loop; hlt
    const code = [0x8e, 0xc7, 0x48, 0xff, 0xc1, 0x48, 0x83, 0xf9, 0x1e, 0x75, 0x03, 0x0f, 0x00, 0xd6,
      0x48, 0x83, 0xf9, 0x3c, 0x75, 0xec, 0xf4];
    const setup = (m: { write(a: bigint, b: number[]): void }) => {
      // GDT 0x60: LDT A at 0x40000, 0x70: LDT B at 0x41000 (16-byte descriptors, limit 0x17).
      m.write(0x8060n, [0x17, 0, 0x00, 0x00, 0x04, 0x82, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
      m.write(0x8070n, [0x17, 0, 0x00, 0x10, 0x04, 0x82, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
      // Entry 1 of each: a DPL 0 data segment, bases 0x1111 and 0x2222.
      m.write(0x40008n, [0xff, 0xff, 0x11, 0x11, 0, 0x93, 0xcf, 0]);
      m.write(0x41008n, [0xff, 0xff, 0x22, 0x22, 0, 0x93, 0xcf, 0]);
    };
    const s = kernel(code, setup, { 7: 0x0cn, 6: 0x70n });
    const ldtr = { selector: 0x60, base: 0x40000n, limit: 0x17, type: 2, s: 0, dpl: 0, present: 1, db: 0, l: 0, g: 0, avl: 0, unusable: 0 };
    const out = runAll({ ...s, gdtr: { base: 0x8000n, limit: 0x7f }, ldtr }, 1000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.es).toMatchObject({ selector: 0x0c, base: 0x2222n });
    expect(out.state.ldtr).toMatchObject({ selector: 0x70, base: 0x41000n });
  });

  it("WRGSBASE inside a compiled block: each GS access uses the base just written", () => {
    // loop: wrgsbase rax; mov rbx,gs:[0]; add r8,rbx; add rax,8; inc rcx; cmp rcx,64; jne loop; jmp .
    const code = [0xf3, 0x48, 0x0f, 0xae, 0xd8, 0x65, 0x48, 0x8b, 0x1c, 0x25, 0, 0, 0, 0, 0x49, 0x01, 0xd8,
      0x48, 0x83, 0xc0, 0x08, 0x48, 0xff, 0xc1, 0x48, 0x83, 0xf9, 0x40, 0x75, 0xe2, 0xeb, 0xfe];
    const m = baseMemory();
    m.write(0x200000n, code);
    for (let k = 0n; k < 64n; k++) m.write64(0x220000n + 8n * k, k);
    const s = layoutState(m, { user: true });
    const gpr = [...s.gpr];
    gpr[0] = 0x220000n;
    const out = runAll({ ...s, gpr, cr4: s.cr4 | FSGSBASE }, 2000);
    expect(out.state.gpr[8]).toBe(2016n);
    expect(out.state.gs.base).toBe(0x220000n + 63n * 8n);
  });

  it("SYSENTER / SYSEXITQ round trips between a user loop and a kernel loop", () => {
    // user 0x200000: inc r12; sysenter. kernel 0x11000: inc r13; cmp r13,100; je done;
    // mov rdx,0x200000; mov rcx,0x210000; sysexitq; done: hlt
    const m = baseMemory();
    m.write(0x200000n, [0x49, 0xff, 0xc4, 0x0f, 0x34]);
    m.write(0x11000n, [0x49, 0xff, 0xc5, 0x49, 0x83, 0xfd, 0x64, 0x74, 0x11, 0x48, 0xc7, 0xc2, 0x00, 0x00, 0x20, 0x00,
      0x48, 0xc7, 0xc1, 0x00, 0x00, 0x21, 0x00, 0x48, 0x0f, 0x35, 0xf4]);
    const s = layoutState(m, { user: true });
    const out = runAll({ ...s, sysenterCs: 0x8n, sysenterEsp: 0x20000n, sysenterEip: 0x11000n }, 2000);
    expect(out.stop.reason).toBe("hlt");
    expect(out.state.gpr[12]).toBe(100n);
    expect(out.state.gpr[13]).toBe(100n);
    expect(out.state.cs.selector).toBe(0x8);
    expect(out.state.rflags & 0x200n).toBe(0n);
  });
});
