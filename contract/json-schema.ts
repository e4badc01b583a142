// JSON Schema (draft 2020-12) for the two file formats, generated from the zod schemas in
// schema.ts with `z.toJSONSchema` on their *input* side: 64-bit values are the hex strings the
// files hold (the bigint transform is not part of the input), and fields with defaults are
// optional. The committed copy is ./schema.json; `ringspec schema` prints a fresh one and a test
// checks that the two agree. Regenerate with: node cli/bin.js schema > spec/format/schema.json
import { z } from "zod";
import {
  CpuJson, DevicesJson, ExpectedJson, HEX_BYTES_PATTERN, Hex64Text, HexBytes, InjectJson, MemoryRegionJson, MsrsJson, ProvenanceJson, RegsJson,
  SegmentJson, SregsJson, StateFileJson, StateJson, TableRegisterJson, TimerJson, VectorJson,
} from "./schema.ts";

interface Meta {
  id?: string;
  title?: string;
  description?: string;
  /** Narrows a hex string further (the bit-width refinements, which act on the bigint). */
  pattern?: string;
}

/** "0x" + hex digits whose value fits in `bits` bits (leading zeros allowed, as on input). */
function hexPatternWithin(bits: 16 | 32): string {
  return `^0x0*[0-9a-fA-F]{1,${bits / 4}}$`;
}

function registry() {
  const r = z.registry<Meta>();
  r.add(Hex64Text, { id: "hex64", description: '64-bit value: "0x" and 1 to 16 hex digits (written lower case without leading zeros)' });
  r.add(SegmentJson.shape.selector, { id: "hex16", description: "16-bit value as a hex string", pattern: hexPatternWithin(16) });
  r.add(SegmentJson.shape.limit, { id: "hex32", description: "32-bit value as a hex string", pattern: hexPatternWithin(32) });
  r.add(TableRegisterJson.shape.limit, { id: "tableLimit", description: "16-bit descriptor-table limit as a hex string", pattern: hexPatternWithin(16) });
  r.add(SegmentJson, { id: "segment", description: "A segment register: selector and hidden part (kvm_segment convention)" });
  r.add(TableRegisterJson, { id: "tableRegister", description: "GDTR or IDTR" });
  r.add(RegsJson, { id: "regs" });
  r.add(SregsJson, { id: "sregs" });
  r.add(MsrsJson, { id: "msrs", description: "FS_BASE and GS_BASE must equal sregs.fs.base and sregs.gs.base" });
  r.add(HexBytes, { pattern: HEX_BYTES_PATTERN });
  r.add(MemoryRegionJson, { id: "memoryRegion", description: "Bytes at a physical address, as two hex digits a byte" });
  r.add(CpuJson, { id: "cpu", description: "Run-time CPU state between instruction boundaries" });
  r.add(TimerJson, { id: "timer", description: "The deterministic timer of docs/devices.md" });
  r.add(DevicesJson, { id: "devices", description: "The devices of docs/devices.md (absent: the reset state); timer.countdown is 1..period while the timer counts" });
  r.add(StateJson, { id: "state", description: "A machine state (a vector's initial section)" });
  r.add(InjectJson, { id: "inject" });
  r.add(ExpectedJson, { id: "expected", description: "Any subset of the state; absent fields are not compared" });
  r.add(ExpectedJson.shape.sregs.unwrap().shape.cs.unwrap(), { id: "expectedSegment", description: "Any subset of a segment register's fields" });
  r.add(ProvenanceJson, { id: "provenance" });
  r.add(VectorJson, { id: "vector", title: "ringspec-vector/1", description: "A test vector" });
  r.add(StateFileJson, { id: "stateFile", title: "ringspec-state/1", description: "A saved machine state (what `ringspec run` prints)" });
  return r;
}

/** The schema of a ringspec file: a `ringspec-vector/1` or a `ringspec-state/1` document. */
export function generateJsonSchema(): Record<string, unknown> {
  const metadata = registry();
  const root = z.union([VectorJson, StateFileJson]);
  metadata.add(root, {
    title: "ringspec files",
    description: "A ringspec-vector/1 test vector or a ringspec-state/1 saved state; the format field tells them apart.",
  });
  return z.toJSONSchema(root, { io: "input", target: "draft-2020-12", metadata, unrepresentable: "throw" }) as Record<string, unknown>;
}

/** The generated schema as the committed file holds it. */
export function jsonSchemaText(): string {
  return JSON.stringify(generateJsonSchema(), null, 2) + "\n";
}
