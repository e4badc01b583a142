// The block compiler (impl/compile/) on untrusted guests: the generated source holds only
// decoder-produced numbers and a fixed set of names — never guest bytes or strings.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ImplEngine } from "../../../impl/engine.ts";
import { blockSource } from "../../../impl/compile/compile.ts";
import { programArb, programState } from "../gen.ts";

describe("generated code", () => {
  it("generated code contains only decoder-produced numbers and fixed names", () => {
    const allowed = new Set([
      "use", "strict", "return", "function", "block", "const", "let", "for", "if", "else", "continue", "true", "L0", "left", "taken",
      "stackTag", "stackTagHi", "stackClasses", "stackBase",
      "false", "m", "budget", "r", "T", "M", "M8", "n", "pa_l", "pa_h", "pb_l", "pb_h", "pr_l", "pr_h", "pc", "el",
      "eh", "xl", "t", "vl", "vh", "sl", "sh", "c0", "nl", "nh", "tl", "th", "ll", "lh", "tg", "te", "o", "s", "al",
      "ah", "bl", "bh", "a", "c", "sg", "ms", "H", "I", "P", "C", "CF", "DS", "LD", "ST", "RMW", "COMMIT",
      "pageTag", "pageTagHi", "pageClasses", "pageBase", "blockEnd", "faultVector", "valueHi", "blockExit",
      "blockStopInsn", "raise", "regs", "segments", "pool32", "pool8", "tlb", "readFastClass", "writeFastClass",
      "lazyOp", "lazySize", "lazyResultLo", "lazyResultHi", "lazyDestLo", "lazyDestHi", "lazySrcLo", "lazySrcHi",
      "lazyCarry", "cpl", "msr", "halted", "shadow", "nextShadow", "flags", "pendingDebugTrap",
    ]);
    for (let k = 0; k < 16; k++) allowed.add(`r${k}l`).add(`r${k}h`);
    // The identifiers not allowed, found by one regular expression instead of a list of every
    // identifier (blocks' sources run to 22 MB, 2.7 million identifiers, in these 12 runs). An
    // identifier (as /[A-Za-z_$][\w$]*/g finds them) is a run of [\w$] without its leading digits:
    // this matches at the start of a run, skips the digits, and takes the identifier unless it is
    // one of `allowed` followed by the run's end.
    const notAllowed = new RegExp(`(?<![\\w$])\\d*(?!(?:${[...allowed].map((id) => id.replace(/\$/g, "\\$")).join("|")})(?![\\w$]))[A-Za-z_$][\\w$]*`, "g");
    let checked = 0;
    const bad: string[] = [];
    fc.assert(
      fc.property(programArb, fc.uint8Array({ minLength: 1, maxLength: 64 }), ({ body, loops }, junk) => {
        const e = new ImplEngine({ maxMemoryBytes: 16 << 20 });
        e.load(programState([...body, Array.from(junk)], Math.max(loops, 3)), "intel");
        e.run(1500);
        for (const map of e.machine.blocksBySlot) {
          if (map === undefined) continue;
          for (const b of map.values()) {
            const src = blockSource(b);
            const body = src.replace('"use strict";', "");
            if (/["'`\\]/.test(body)) bad.push("quote or backslash in generated source");
            for (const id of body.match(notAllowed) ?? []) bad.push(id.replace(/^\d+/, ""));
            checked++;
          }
        }
      }),
      { seed: 4242, numRuns: 12 },
    );
    expect(bad).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });
});
