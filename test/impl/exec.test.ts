// General instructions (impl/exec.ts) at the edges the vectors do not reach: a masked shift count
// of 0, 64-bit multiply and divide on int32 halves.
import { describe, expect, it } from "vitest";
import type { ArchState } from "../../contract/state.ts";
import { RAX, RCX, RDX, RSP, kernel, runAll, u64, type Memory } from "./helpers.ts";
import { expectAgreesWithSpec } from "./against-spec.ts";

/** A kernel-mode state: `code` at 0x10000, memory `setup`, state fields `patch`, registers `regs`. */
function k(code: number[], setup?: (m: Memory) => void, patch: Partial<ArchState> = {}, regs: Record<number, bigint> = {}): ArchState {
  return kernel(code, setup, regs, patch);
}

describe("general instructions", () => {
  it("a masked shift count of 0 still writes the destination (32-bit zero-extension, no flags)", () => {
    // mov rax, -1; stc; shl eax, 0 (C1 E0 00); hlt
    const out = runAll(k([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xf9, 0xc1, 0xe0, 0x00, 0xf4]), 10);
    expect(out.state.gpr[RAX]).toBe(0xffffffffn);
    expect(out.state.rflags & 1n).toBe(1n);
  });

  it("64-bit arithmetic on halves: MUL/IMUL/DIV at the edges", () => {
    // mov rax, -1; mov rcx, -1; mul rcx → rdx:rax = 0xfffffffffffffffe_0000000000000001
    const mul = runAll(k([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xe1, 0xf4]), 10);
    expect(mul.state.gpr[RAX]).toBe(1n);
    expect(mul.state.gpr[RDX]).toBe(0xfffffffffffffffen);
    // imul rcx (signed): (-1)·(-1) = 1, rdx = 0, CF = OF = 0
    const imul = runAll(k([0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xe9, 0xf4]), 10);
    expect(imul.state.gpr[RDX]).toBe(0n);
    expect(imul.state.rflags & 0x801n).toBe(0n);
    // div: rdx:rax = 2^64 / 3
    const div = runAll(k([0x48, 0x31, 0xc0, 0xba, 1, 0, 0, 0, 0xb9, 3, 0, 0, 0, 0x48, 0xf7, 0xf1, 0xf4]), 10);
    expect(div.state.gpr[RAX]).toBe(0x5555555555555555n);
    expect(div.state.gpr[RDX]).toBe(1n);
    // idiv overflow → #DE
    const de = runAll(k([0x48, 0xb8, ...u64(1n << 63n), 0x48, 0x99, 0x48, 0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0x48, 0xf7, 0xf9, 0xf4]), 10);
    expect(de.state.rip).toBe(0xb001n);
    expect(de.state.gpr[RCX]).toBe(0xffffffffffffffffn);
  });
});

describe("stack operand size in 64-bit mode", () => {
  // STACK-01 in conformance/expectations/spec-impl.json until this fix: impl let 66h win over REX.W.
  it("REX.W wins over 66h: 66 48 50 pushes 8 bytes, 66 50 pushes 2 (and spec agrees)", () => {
    const rsp = (code: number[]): bigint => expectAgreesWithSpec(k([...code, 0xf4]), 5).state.gpr[RSP] ?? -1n;
    const start = rsp([]);
    expect(start - rsp([0x66, 0x48, 0x50])).toBe(8n); // push rax, REX.W after 66h
    expect(start - rsp([0x66, 0x50])).toBe(2n); // push ax
    expect(start - rsp([0x66, 0x48, 0x9c])).toBe(8n); // pushfq
    expect(rsp([0x66, 0x48, 0x58]) - start).toBe(8n); // pop rax
  });
});
