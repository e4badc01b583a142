// Known gaps: named conditions on a divergence that a campaign may expect (`--expect-deviation
// NAME`, or `{"gap": NAME}` in an expectations file) when a difference is known to come from
// something the reference does not model yet, rather than from one rule. Each says what it
// covers; reports list how often it was seen. They are never applied unless named.
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent } from "../../contract/engine.ts";
import type { FieldDifference } from "../../contract/compare.ts";

export interface GapContext {
  readonly before: ArchState;
  readonly stateA: ArchState;
  readonly stateB: ArchState;
  readonly eventA: EngineEvent | undefined;
  readonly eventB: EngineEvent | undefined;
  readonly differences: readonly FieldDifference[];
}

export interface Gap {
  readonly name: string;
  readonly description: string;
  readonly applies: (c: GapContext) => boolean;
}

// compat-segmentation (spec/ without segmentation in compatibility mode) is gone: spec/ models it
// since issue 9, and the two engines agree there.
export const GAPS: readonly Gap[] = [
  {
    name: "devices",
    description:
      "the devices of docs/devices.md (exit port 0xF4, debug console, timer) are moving into the engines: a divergence only in the devices.* fields of the state, where one engine models a device and the other does not yet",
    applies: (c) => c.differences.length > 0 && c.differences.every((d) => d.field.startsWith("devices.")),
  },
  {
    name: "b-unmodelled",
    description:
      "engine B stops `unsupported` at an instruction engine A models (e.g. an external engine that implements less than spec/): a divergence at a step where B's event is `unsupported` and A's is not",
    applies: (c) => c.eventB?.kind === "unsupported" && c.eventA !== undefined && c.eventA.kind !== "unsupported",
  },
];

export function gapByName(name: string): Gap | undefined {
  return GAPS.find((g) => g.name === name);
}
