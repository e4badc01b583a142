// Known gaps: named conditions on a divergence that a campaign may expect (`--expect-deviation
// NAME`, or `{"gap": NAME}` in an expectations file) when a difference is known to come from
// something the reference does not model yet, rather than from one rule. Each says what it
// covers; reports list how often it was seen. They are never applied unless named.
import type { ArchState } from "../../contract/state.ts";
import type { EngineEvent } from "../../contract/engine.ts";

export interface GapContext {
  readonly before: ArchState;
  readonly stateA: ArchState;
  readonly stateB: ArchState;
  readonly eventA: EngineEvent | undefined;
  readonly eventB: EngineEvent | undefined;
}

export interface Gap {
  readonly name: string;
  readonly description: string;
  readonly applies: (c: GapContext) => boolean;
}

export const GAPS: readonly Gap[] = [
  {
    name: "compat-segmentation",
    description:
      "spec/ does not model segmentation in compatibility mode (limit, type and unusable checks, the stack width of SS.B; docs/model-choices.md); impl/ does: a divergence at a step that runs in, or enters, compatibility mode",
    applies: (c) => c.before.cs.l === 0 || c.stateA.cs.l === 0 || c.stateB.cs.l === 0,
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
