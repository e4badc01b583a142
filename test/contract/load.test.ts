// The loader's output (contract/load.ts): what a loaded vector keeps.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError, parseDocument } from "../../contract/load.ts";
import { GPR_NAMES } from "../../contract/schema.ts";

/** A register's name → its place in ArchState.gpr (the SDM's numbering: GPR_NAMES is in the
 *  format's order, which is not). */
const GPR_NUMBER: Record<string, number> = {
  rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7, r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15,
};

/** The vector every group below starts from. */
const text = readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8");

describe("a loaded vector", () => {
  it("keeps its document without the initial section (the state is that section, converted), and the rest as validated", () => {
    const doc = parseDocument(text);
    if (doc.kind !== "vector") throw new Error("expected a vector");
    expect("initial" in doc.vector).toBe(false);
    const { initial, ...rest } = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(doc.vector).sort()).toEqual(Object.keys(rest).sort());
    expect(doc.vector.expected).toEqual(rest["expected"]);
    expect(doc.state.memory.size).toBeGreaterThan(0);
    expect(initial).toBeDefined();
  });

  it("has its provenance validated", () => {
    const doc = JSON.parse(text) as { provenance: Record<string, unknown> };
    doc.provenance["agrees_with_sdm"] = "yes";
    expect(() => parseDocument(JSON.stringify(doc))).toThrow(/^provenance\.agrees_with_sdm: /);
  });

  it("holds each register's value as BigInt reads its text, in either case, with leading zeros (fixed seed)", () => {
    const hexText = fc
      .tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat({ max: 15 }), fc.boolean())
      .map(([value, zeros, upper]) => {
        const digits = value.toString(16).padStart(Math.min(16, value.toString(16).length + zeros), "0");
        return `0x${upper ? digits.toUpperCase() : digits}`;
      });
    const small = fc.nat({ max: 0xffffff }).map((n) => `0x${n.toString(16)}`);
    const doc = JSON.parse(text) as { initial: { regs: Record<string, string> } };
    fc.assert(
      fc.property(fc.array(fc.oneof({ arbitrary: hexText, weight: 1 }, { arbitrary: small, weight: 3 }), { minLength: 16, maxLength: 16 }), (texts) => {
        GPR_NAMES.forEach((name, i) => (doc.initial.regs[name] = texts[i]!));
        const loaded = parseDocument(JSON.stringify(doc));
        GPR_NAMES.forEach((name, i) => expect(loaded.state.gpr[GPR_NUMBER[name]!]).toBe(BigInt(texts[i]!)));
      }),
      { seed: 17, numRuns: 200 },
    );
  });
});

describe("a memory entry's end", () => {
  /** The vector with one more memory entry; its error line, or null when it loads. */
  const withEntry = (gpa: string, bytes: string): string | null => {
    const doc = JSON.parse(text) as { initial: { memory: { gpa: string; bytes: string }[] } };
    doc.initial.memory.push({ gpa, bytes });
    try {
      parseDocument(JSON.stringify(doc));
      return null;
    } catch (e) {
      if (e instanceof FormatError) return e.message;
      throw e;
    }
  };
  const past = /^initial\.memory\[\d+\]\.gpa: the bytes run past the physical address width/;

  it("may reach 2^MAXPHYADDR (46 bits) but not pass it, however the address is written (checked in Numbers, exactly)", () => {
    expect(withEntry("0x3ffffffffffc", "01020304")).toBeNull();
    expect(withEntry("0x00003ffffffffffc", "01020304")).toBeNull();
    expect(withEntry("0x3ffffffffffd", "01020304")).toMatch(past);
    expect(withEntry("0x400000000000", "")).toBeNull();
    expect(withEntry("0x400000000000", "01")).toMatch(past);
    // Above 2^53, where a Number no longer holds every integer: still past, never wrapped or rounded in.
    expect(withEntry("0x20000000000001", "01")).toMatch(past);
    expect(withEntry("0xffffffffffffffff", "01")).toMatch(past);
    expect(withEntry("0xFFFFFFFFFFFFF000", "00".repeat(4096))).toMatch(past);
  });
});

describe("the page budget at load", () => {
  it("counts distinct pages: entries that together span more pages than the budget but cover few load; entries on more pages than the budget do not", () => {
    const doc = JSON.parse(text) as { initial: { memory: { gpa: string; bytes: string }[] } };
    // 32,769 entries, each over the same two pages: 65,538 page spans, 2 distinct pages (plus the vector's own).
    const overlapping = { ...doc, initial: { ...doc.initial, memory: [...doc.initial.memory, ...Array.from({ length: 32_769 }, () => ({ gpa: "0x401fff", bytes: "5a5a" }))] } };
    const loaded = parseDocument(JSON.stringify(overlapping));
    expect(loaded.state.memory.get(0x401)![4095]).toBe(0x5a);
    expect(loaded.state.memory.get(0x402)![0]).toBe(0x5a);
    // 32,769 entries on pairs of pages of their own: 65,538 distinct pages.
    const apart = { ...doc, initial: { ...doc.initial, memory: [...doc.initial.memory, ...Array.from({ length: 32_769 }, (_, i) => ({ gpa: `0x${(0x1000000 + i * 8192 + 4095).toString(16)}`, bytes: "5a5a" }))] } };
    expect(() => parseDocument(JSON.stringify(apart))).toThrow(/^initial\.memory: more than 65,536 pages \(the page budget, 256 MiB\)$/);
  });
});
