// The arithmetic flags written out in generated code (impl/compile/flags.ts arithFlagsExpr: how a
// trace computes SYSCALL's saved RFLAGS from the flag producer's locals) are the interpreter's
// (impl/flags.ts arithFlags) on every operation and size: the same producer locals are stored as
// the lazy record (writer.ts flagStore) and evaluated by arithFlags, and evaluated by the
// expression; the two must agree on every value, edge values included.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { arithFlagsExpr } from "../../../impl/compile/flags.ts";
import { BlockWriter, type FlagProducer, flagStore } from "../../../impl/compile/writer.ts";
import { LAZY_ADC, LAZY_ADD, LAZY_DEC, LAZY_INC, LAZY_LOGIC, LAZY_SBB, LAZY_SUB, PARITY, arithFlags } from "../../../impl/flags.ts";
import type { Machine } from "../../../impl/machine.ts";

const OPS: [string, number][] = [
  ["ADD", LAZY_ADD], ["ADC", LAZY_ADC], ["SUB", LAZY_SUB], ["SBB", LAZY_SBB], ["LOGIC", LAZY_LOGIC], ["INC", LAZY_INC], ["DEC", LAZY_DEC],
];

type Locals = [number, number, number, number, number, number, number];
/** Evaluates `statements` then returns `value`, over the producer locals. */
type Evaluator = (m: object, P: Uint8Array, ...locals: Locals) => number;

function evaluator(statements: string, value: string): Evaluator {
  return new Function("m", "P", "pa_l", "pa_h", "pb_l", "pb_h", "pr_l", "pr_h", "pc", `${statements} return ${value};`) as Evaluator;
}

/** A 32-bit half: edge values often, any value otherwise. */
const half = fc.oneof(fc.constantFrom(0, -1, 1, 0x7fffffff, -0x80000000, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 15, 16), fc.integer({ min: -0x80000000, max: 0x7fffffff }));

describe("arithmetic flags written out (compile/flags.ts arithFlagsExpr)", () => {
  for (const [name, op] of OPS) {
    for (const size of [1, 2, 4, 8]) {
      it(`${name}, ${8 * size}-bit: the interpreter's flags for the same producer`, () => {
        const producer: FlagProducer = { op, size };
        const w = new BlockWriter({ insns: [{ op: 0 }], ripLo: 0, ripHi: 0 } as never);
        w.flag = producer;
        const stored = evaluator(flagStore(w), "0");
        const inline = evaluator("", arithFlagsExpr(producer));
        const mask = size === 8 || size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
        fc.assert(fc.property(half, half, half, half, half, half, fc.integer({ min: 0, max: 1 }), (al, ah, bl, bh, rl, rh, c) => {
          // Values of sizes below 8 are kept masked, with zero high halves (as compiled code keeps them).
          const locals: Locals = size === 8 ? [al, ah, bl, bh, rl, rh, c] : [al & mask, 0, bl & mask, 0, rl & mask, 0, c];
          const m = { flags: 2, lazyOp: 0, lazySize: 0, lazyResultLo: 0, lazyResultHi: 0, lazyDestLo: 0, lazyDestHi: 0, lazySrcLo: 0, lazySrcHi: 0, lazyCarry: 0 };
          stored(m, PARITY, ...locals);
          // expect only on a mismatch (11,200 cases; vitest's expect costs more than the check).
          const got = inline(m, PARITY, ...locals), want = arithFlags(m as unknown as Machine);
          if (!Object.is(got, want)) expect(got).toBe(want);
        }), { numRuns: 400, seed: 14 * 64 + op * 8 + size });
      });
    }
  }
});
