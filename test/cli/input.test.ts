// cli/input.ts loadDocument reads files of up to a few MiB into one reused buffer: what it loads
// must not depend on the files read before (longer or shorter, good or bad), and a larger file
// reads as well.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadDocument } from "../../cli/input.ts";
import { parseDocument } from "../../contract/load.ts";

const dir = mkdtempSync(join(tmpdir(), "ringspec-input-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vectorText = readFileSync(new URL("../../conformance/vectors/syscall-basic.json", import.meta.url), "utf8");

/** The vector with `bytes` more bytes of memory (a distinct non-zero pattern per size). */
function vectorWithMemory(bytes: number): string {
  const doc = JSON.parse(vectorText) as { initial: { memory: { gpa: string; bytes: string }[] } };
  const hex = Buffer.from(Uint8Array.from({ length: bytes }, (_, i) => (i * 7 + bytes) & 0xff)).toString("hex");
  doc.initial.memory.push({ gpa: "0x400000", bytes: hex });
  return JSON.stringify(doc, null, 1);
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("loadDocument", () => {
  it("loads each file as its own text parses, whatever it read before: larger, smaller, refused, beyond the reused buffer", () => {
    const large = file("large.json", vectorWithMemory(300_000));
    const small = file("small.json", vectorText);
    const medium = file("medium.json", vectorWithMemory(1000));
    const bad = file("bad.json", vectorText.slice(0, vectorText.length >> 1));
    const huge = file("huge.json", vectorWithMemory(2_200_000)); // more than the reused buffer's 4 MiB of text
    const order = [large, small, medium, bad, small, huge, medium, large, small];
    for (const path of order) {
      const text = readFileSync(path, "utf8");
      if (path === bad) {
        expect(() => loadDocument(path)).toThrow(/^.*bad\.json: not valid JSON \(/);
        continue;
      }
      const loaded = loadDocument(path);
      const want = parseDocument(text);
      expect(loaded.kind).toBe(want.kind);
      const { memory, ...registers } = loaded.state;
      const { memory: wantMemory, ...wantRegisters } = want.state;
      expect(registers).toEqual(wantRegisters);
      expect([...memory.keys()]).toEqual([...wantMemory.keys()]);
      for (const [n, page] of memory) expect(Buffer.compare(page, wantMemory.get(n)!)).toBe(0);
      if (loaded.kind === "vector" && want.kind === "vector") expect(loaded.vector).toEqual(want.vector);
    }
  });
});
