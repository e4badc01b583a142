// A block impl's compiler cannot compile (a template bug) runs interpreted: correct, but slow,
// so the failure must be seen. Production counts it and warns once; the test suite (test/setup.ts)
// makes it fail the test that hit it.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ImplEngine } from "../../../impl/engine.ts";
import { compileFailures, setCompileFailureHandler, type CompileFailureHandler } from "../../../impl/compile/compile.ts";
import { RAX, RCX, kernel } from "../helpers.ts";

/** add rax, rcx; dec rcx; jnz loop; hlt — hot enough to compile. */
const LOOP = [0x48, 0x01, 0xc8, 0x48, 0xff, 0xc9, 0x75, 0xf8, 0xf4];

function failingFunctionConstructor() {
  // A constructible mock (compile.ts calls `new Function(...)`).
  return vi.spyOn(globalThis, "Function").mockImplementation(function () {
    throw new SyntaxError("planted template bug");
  } as unknown as FunctionConstructor);
}

describe("impl block compiler: a compile failure is never silent", () => {
  let restore: CompileFailureHandler | undefined;
  afterEach(() => {
    vi.restoreAllMocks();
    if (restore !== undefined) setCompileFailureHandler(restore);
    restore = undefined;
  });

  it("in the tests it fails the run that hit it, naming the error", () => {
    failingFunctionConstructor();
    const e = new ImplEngine();
    e.load(kernel(LOOP, undefined, { [RCX]: 50n }), "intel");
    expect(() => e.run(1000)).toThrow(/did not compile \(SyntaxError: planted template bug\)/);
  });

  it("in production it is counted and reported, and the block runs interpreted with the same result", () => {
    const seen: string[] = [];
    restore = setCompileFailureHandler((error) => seen.push(error.message));
    const before = compileFailures.count;
    failingFunctionConstructor();
    const e = new ImplEngine();
    e.load(kernel(LOOP, undefined, { [RCX]: 50n }), "intel");
    expect(e.run(1000).reason).toBe("hlt");
    expect(e.state().gpr[RAX]).toBe(1275n); // 50 + 49 + ... + 1
    expect(seen.length).toBeGreaterThan(0);
    expect(compileFailures.count).toBeGreaterThan(before);
    expect(compileFailures.first).toMatch(/SyntaxError: planted template bug/);
  });
});
