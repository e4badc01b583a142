// State I/O at any size (issue 8, items 1-3): the byte-level JSON reader with its caps, the linear
// hex check, the memory entries a state is written with (bounded by its pages, proportional to
// what is not zero), the streamed writer (exactly the JSON.stringify text), the one input domain
// (contract/scope.ts: the same refusal from the loader and from both engines' load()), and the one
// escaping function for text from outside.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseBytes, parseJsonBytes, DEFAULT_JSON_LIMITS } from "../../contract/json-bytes.ts";
import { FormatError, parseDocument } from "../../contract/load.ts";
import { isHexBytes, bytesToHex } from "../../contract/hex.ts";
import { memoryRegions, pagesFromRegions, stateToJson, type ArchState } from "../../contract/state.ts";
import { stateDocumentChunks, stateDocumentText } from "../../contract/write-state.ts";
import { modelScopeViolation } from "../../contract/scope.ts";
import { displayJson, displayText } from "../../contract/text.ts";
import { PAGE_BUDGET } from "../../contract/limits.ts";
import { SpecEngine } from "../../spec/engine.ts";
import { ImplEngine } from "../../impl/engine.ts";
import { kernelState } from "../helpers/fixture.ts";
import { hasNonZeroByte } from "../helpers/bytes.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function jsonError(text: string, limits?: Parameters<typeof parseJsonBytes>[1]): string {
  try {
    parseJsonBytes(bytes(text), limits);
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error("expected a FormatError");
}

describe("the JSON reader (contract/json-bytes.ts)", () => {
  it("reads what JSON.parse reads (fixed seed)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(parseJsonBytes(bytes(text))).toEqual(JSON.parse(text));
        const pretty = JSON.stringify(value, null, 2);
        expect(parseJsonBytes(bytes(pretty))).toEqual(JSON.parse(pretty));
        // The byte parser (huge documents, errors, caps) reads the same as the native path.
        expect(parseBytes(bytes(pretty), DEFAULT_JSON_LIMITS)).toEqual(JSON.parse(pretty));
      }),
      { seed: 8, numRuns: 400 },
    );
  });

  it("the native path keeps the caps and the byte parser's errors: a BOM, one value or level too many, a long string", () => {
    expect(jsonError("\ufeff{}")).toMatch(/^not valid JSON \(unexpected byte 0xef at line 1 column 1\)$/);
    const limits = { maxDepth: 3, maxValues: 5, maxStringBytes: 12 };
    expect(parseJsonBytes(bytes("[[[1]]]"), limits)).toEqual([[[1]]]);
    expect(jsonError("[[[[1]]]]", limits)).toMatch(/nested more than 3 levels deep/);
    expect(parseJsonBytes(bytes("[1,2,3,4]"), limits)).toEqual([1, 2, 3, 4]);
    expect(jsonError("[1,2,3,4,5]", limits)).toMatch(/more than 5 JSON values/);
    expect(parseJsonBytes(bytes('["ab"]'), limits)).toEqual(["ab"]);
    expect(jsonError('["abcdefghijklm"]', limits)).toMatch(/a string longer than 12 bytes/);
    expect(jsonError('{"abcdefghijklm":1}', limits)).toMatch(/a string longer than 12 bytes/);
  });

  it("the native path decides every cap as the byte parser does, for any document and any caps (fixed seed)", () => {
    const outcome = (read: () => unknown) => {
      try {
        return { value: read() };
      } catch (e) {
        return { error: (e as Error).message };
      }
    };
    const limits = fc.record({ maxDepth: fc.integer({ min: 1, max: 6 }), maxValues: fc.integer({ min: 1, max: 40 }), maxStringBytes: fc.integer({ min: 1, max: 60 }) });
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), limits, (value, pretty, caps) => {
        const text = bytes(pretty ? JSON.stringify(value, null, 1) : JSON.stringify(value));
        expect(outcome(() => parseJsonBytes(text, caps))).toEqual(outcome(() => parseBytes(text, caps)));
      }),
      { seed: 14, numRuns: 1000 },
    );
  });

  it("escapes, non-ASCII text, surrogate pairs and a __proto__ key are read as JSON.parse reads them", () => {
    const text = String.raw`{"a\"b":"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00","é":"ünï ✓ 😀","__proto__":{"x":1},"n":[-0.5e-3,1E2,0]}`;
    const value = parseJsonBytes(bytes(text)) as Record<string, unknown>;
    expect(value).toEqual(JSON.parse(text));
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toContain("__proto__");
  });

  it("refuses bad JSON with one line naming where", () => {
    expect(jsonError("{")).toMatch(/^not valid JSON \(expected a field name, found end of file at \$ \(line 1 column 2\)\)$/);
    expect(jsonError('{"a": [1, 2,]}')).toMatch(/^not valid JSON \(unexpected "\]" at a\[2\] \(line 1 column 13\)\)$/);
    expect(jsonError('{"a": 01}')).toMatch(/expected "," or "}", found "1"/);
    expect(jsonError('"\u0001"')).toMatch(/a control character in a string/);
    expect(jsonError("[1] [2]")).toMatch(/after the document/);
    expect(jsonError('"\\x"')).toMatch(/a bad escape/);
    const notUtf8 = new Uint8Array([0x22, 0xff, 0xfe, 0x22]);
    expect(() => parseJsonBytes(notUtf8)).toThrow(/bytes that are not UTF-8/);
  });

  it("stops at its caps while parsing: depth, values, string length", () => {
    expect(jsonError("[".repeat(100_000))).toMatch(/: nested more than 64 levels deep$/);
    expect(jsonError(`[${"1,".repeat(20)}1]`, { maxDepth: 64, maxValues: 10, maxStringBytes: 100 })).toMatch(/^\[\d+\]: more than 10 JSON values in one document$/);
    expect(jsonError(`{"memory":[{"bytes":"${"ab".repeat(100)}"}]}`, { maxDepth: 64, maxValues: 100, maxStringBytes: 100 })).toMatch(/^memory\[0\]\.bytes: a string longer than 100 bytes$/);
  });
});

/** Non-zero pages as [page, hex] (a quick, exact comparison of memories). */
function hexPages(pages: ReadonlyMap<number, Uint8Array>): [number, string][] {
  return [...pages].filter(([, p]) => hasNonZeroByte(p)).map(([n, p]) => [n, bytesToHex(p)] as [number, string]).sort((a, b) => a[0] - b[0]);
}

describe("hex digits and memory entries", () => {
  it("an 8 MiB hex string is checked in one pass (no regular expression, no stack overflow)", () => {
    const text = "0123456789abcdefABCDEF00".repeat((8 << 20) / 24);
    expect(isHexBytes(text)).toBe(true);
    expect(isHexBytes(text + "0")).toBe(false);
    expect(isHexBytes(text.slice(0, -2) + "g0")).toBe(false);
    expect(isHexBytes("é0")).toBe(false);
  });

  const pagesArb = fc
    .array(fc.tuple(fc.nat(700), fc.array(fc.tuple(fc.nat(4095), fc.integer({ min: 1, max: 255 })), { maxLength: 8 }), fc.boolean(), fc.boolean()), { maxLength: 120 })
    .map((specs) => {
      const pages = new Map<number, Uint8Array>();
      for (const [n, writes, first, last] of specs) {
        const page = pages.get(n) ?? new Uint8Array(4096);
        for (const [at, v] of writes) page[at] = v;
        if (first) page[0] = 1;
        if (last) page[4095] = 2;
        pages.set(n, page);
      }
      return pages;
    });

  it("written entries reload to the same pages, at most one entry per non-zero page, none over 1 MiB (fixed seed)", () => {
    fc.assert(
      fc.property(pagesArb, (pages) => {
        const regions = [...memoryRegions(pages)];
        const nonZero = [...pages].filter(([, p]) => hasNonZeroByte(p));
        expect(regions.length).toBeLessThanOrEqual(nonZero.length);
        for (const r of regions) {
          expect(r.bytes.length).toBeLessThanOrEqual(1 << 20);
          expect(r.bytes[0]).not.toBe(0);
          expect(r.bytes[r.bytes.length - 1]).not.toBe(0);
        }
        const back = pagesFromRegions(regions.map((r) => ({ gpa: r.gpa, bytes: bytesToHex(r.bytes) })));
        expect(hexPages(back)).toEqual(hexPages(new Map(nonZero)));
      }),
      { seed: 81, numRuns: 60 },
    );
  });

  it("one byte on each of many pages is written as one-byte entries", () => {
    const pages = new Map<number, Uint8Array>();
    for (let n = 0; n < 1000; n++) {
      const page = new Uint8Array(4096);
      page[n % 4096] = 7;
      pages.set(0x40000 + n, page);
    }
    const regions = [...memoryRegions(pages)];
    expect(regions).toHaveLength(1000);
    expect(regions.every((r) => r.bytes.length === 1)).toBe(true);
  });
});

describe("the streamed state writer (contract/write-state.ts)", () => {
  it("writes exactly the JSON.stringify text, in pieces no larger than one entry", () => {
    const base = kernelState();
    const big = new Uint8Array(3 << 20).map((_, i) => (i * 7 + 1) & 0xff || 1);
    const memory = new Map(base.memory);
    for (let k = 0; k < big.length / 4096; k++) memory.set(0x1000 + k, big.subarray(k * 4096, (k + 1) * 4096));
    const state: ArchState = { ...base, memory };
    const chunks = [...stateDocumentChunks(state, "amd")];
    expect(chunks.join("")).toBe(JSON.stringify({ format: "ringspec-state/1", profile: "amd", ...stateToJson(state) }, null, 2) + "\n");
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(2 << 20);
    expect(hexPages(parseDocument(chunks.join("")).state.memory)).toEqual(hexPages(memory));
  });

  it("a state with no memory writes an empty array", () => {
    const state: ArchState = { ...kernelState(), memory: new Map() };
    expect(stateDocumentText(state, "intel")).toBe(JSON.stringify({ format: "ringspec-state/1", profile: "intel", ...stateToJson(state) }, null, 2) + "\n");
  });
});

describe("one input domain: the loader and both engines refuse the same states", () => {
  const base = kernelState();
  const shared = base.memory.values().next().value!;
  const cases: [string, ArchState, RegExp][] = [
    ["RFLAGS bits 63:32", { ...base, rflags: (1n << 40n) | 2n }, /^rflags: reserved bits 63:32 set \(0x10000000000\)$/],
    ["CR0 bits 63:32", { ...base, cr0: base.cr0 | (1n << 33n) }, /^cr0: bits 63:32 are reserved/],
    ["CR3 above MAXPHYADDR", { ...base, cr3: 1n << 46n }, /^cr3: bits 63:46 set/],
    ["CR8 above bit 3", { ...base, cr8: 16n }, /^cr8: only bits 3:0 exist/],
    ["memory above MAXPHYADDR", { ...base, memory: new Map([...base.memory, [2 ** 34, shared]]) }, /^memory: page 0x400000000000 lies beyond the physical address width/],
    ["more pages than the budget", { ...base, memory: new Map(Array.from({ length: PAGE_BUDGET + 1 }, (_, n) => [n, shared] as const)) }, /^memory: 65,537 pages, more than the page budget of 65,536 \(256 MiB\)$/],
    ["a pending IRQ that is no vector", { ...base, cpu: { ...base.cpu, pendingIrq: 256 } }, /^cpu\.pending_irq: expected a vector/],
  ];

  it.each(cases)("%s: refused, naming the field, by the loader's check and by spec's and impl's load()", (_, state, reason) => {
    expect(modelScopeViolation(state)).toMatch(reason);
    for (const engine of [new SpecEngine(), new ImplEngine()]) {
      expect(() => engine.load(state, "intel")).toThrow(new RegExp(`^state outside the model: ${reason.source.slice(1)}`));
    }
  });

  it("the states both engines run are the loader's: the kernel state loads everywhere", () => {
    expect(modelScopeViolation(base)).toBeNull();
    for (const engine of [new SpecEngine(), new ImplEngine()]) expect(() => engine.load(base, "intel")).not.toThrow();
  });

  it("RFLAGS's reserved bits 31:22, 15, 5, 3 set and bit 1 clear are inside the domain (an engine under test may make them), and both engines keep them", () => {
    const rflags = 0xffc0_8028n;
    const state: ArchState = { ...base, rflags };
    expect(modelScopeViolation(state)).toBeNull();
    expect(modelScopeViolation({ ...base, rflags: 0n })).toBeNull();
    for (const engine of [new SpecEngine(), new ImplEngine()]) {
      engine.load(state, "intel");
      expect(engine.state().rflags).toBe(rflags);
    }
  });
});

describe("text from outside, made safe to print (contract/text.ts)", () => {
  it("control characters, C1 controls, bidirectional overrides and line separators become visible escapes", () => {
    expect(displayText("evil\n70 passed, 0 failed\u001b[2J\r\t\u0007\u009b\u202e\u2028x")).toBe(
      "evil\\n70 passed, 0 failed\\x1b[2J\\r\\t\\x07\\x9b\\u202e\\u2028x",
    );
    expect(displayText("plain text, ünï ✓ 😀 C:\\path")).toBe("plain text, ünï ✓ 😀 C:\\path");
    expect(displayText("a\nb\tc\u001b", { lines: true })).toBe("a\nb\tc\\x1b");
    expect(displayText("lone \ud800 surrogate")).toBe("lone \\ud800 surrogate");
  });

  it("JSON output keeps its value but carries no raw terminal controls", () => {
    const value = { name: "a\u009b\u202eb\u2029" };
    const text = displayJson(JSON.stringify(value));
    expect(JSON.parse(text)).toEqual(value);
    expect(text).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2028\u2029]/);
  });
});
