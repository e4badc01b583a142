// Nothing in spec/ mutates its input: stepping a machine leaves that machine (registers, segment
// caches, run-time state and every memory byte) exactly as it was.
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { run, step, Stepper } from "../../spec/index.ts";
import type { Machine } from "../../spec/machine/machine.ts";
import { AMD, INTEL } from "../../contract/profile.ts";
import { kernelMachine, userMachine, vectorMachine, vectorPath, withCode } from "../helpers/fixture.ts";

/** Every field but memory, flattened, plus a copy of every backed page, all in one buffer (copied
 *  and compared natively: exact, and cheaper than hashing the pages in JS before and after each
 *  step, as this test did). */
interface Snapshot {
  readonly fields: readonly unknown[];
  /** The backed pages' numbers and lengths, in page order. */
  readonly layout: string;
  readonly bytes: Uint8Array;
}

/** Every field but memory as a flat list: each object's own keys in order, each followed by its
 *  value, arrays by their length and elements, down to the primitives. Two lists differ (Object.is,
 *  element by element) wherever the fields' JSON texts (bigints in hex), which this test compared
 *  before, differ, and also where only an undefined field or a bigint turned string does: a third
 *  of the cost of writing the JSON, which was a quarter of this file's time. */
function fields(m: Machine): unknown[] {
  const { memory: _memory, ...rest } = m;
  const out: unknown[] = [];
  flatten(rest, out);
  return out;
}

/** Markers no field holds (unique symbols): each array and each object starts with its marker
 *  and its length, so `{x: []}` and `{x: 0}`, or `[[1], 2]` and `[[1, 2]]`, flatten differently. */
const ARRAY = Symbol("array");
const OBJECT = Symbol("object");

function flatten(v: unknown, out: unknown[]): void {
  if (typeof v !== "object" || v === null) out.push(v);
  else if (Array.isArray(v)) {
    out.push(ARRAY, v.length);
    for (const x of v) flatten(x, out);
  } else {
    const keys = Object.keys(v);
    out.push(OBJECT, keys.length);
    for (const k of keys) {
      out.push(k);
      flatten((v as Record<string, unknown>)[k], out);
    }
  }
}

/** flatten's list for `v` (the check below). */
function flat(v: unknown): unknown[] {
  const out: unknown[] = [];
  flatten(v, out);
  return out;
}

function sameFields(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function pagesOf(m: Machine): [number, Uint8Array][] {
  return [...m.memory.pages()].sort((a, b) => a[0] - b[0]);
}

function layoutOf(pages: readonly [number, Uint8Array][]): string {
  return pages.map(([n, page]) => `${n}:${page.length}`).join(",");
}

function snapshot(m: Machine): Snapshot {
  const pages = pagesOf(m);
  const bytes = new Uint8Array(pages.reduce((n, [, page]) => n + page.length, 0));
  let at = 0;
  for (const [, page] of pages) {
    bytes.set(page, at);
    at += page.length;
  }
  return { fields: fields(m), layout: layoutOf(pages), bytes };
}

/** `m` is as `then` saw it: every field, the same pages, every byte of them (expect is called
 *  only on a difference: it costs more than the comparison). */
function expectUnchanged(m: Machine, then: Snapshot): void {
  const now = fields(m);
  if (!sameFields(now, then.fields)) expect(now).toEqual(then.fields);
  const pages = pagesOf(m);
  const layout = layoutOf(pages);
  if (layout !== then.layout) expect(layout).toBe(then.layout);
  let at = 0;
  for (const [n, page] of pages) {
    const was = then.bytes.subarray(at, at + page.length);
    if (Buffer.compare(page, was) !== 0) expect.fail(`page ${n}: byte ${page.findIndex((x, i) => x !== was[i])} changed`);
    at += page.length;
  }
}

/** Steps up to `n` times, checking after each step that the step's input is unchanged. */
function checkSteps(start: Machine, n: number, profile = INTEL): void {
  let m = start;
  for (let i = 0; i < n; i++) {
    const before = snapshot(m);
    const result = step(m, { profile });
    expectUnchanged(m, before);
    if (result.event.kind === "unsupported" || result.event.kind === "shutdown") return;
    m = result.state;
  }
}

/** Steps `start` with `step` until `n` steps or a stop; the machine reached. */
function stepped(start: Machine, n: number, profile = INTEL): Machine {
  let m = start;
  for (let i = 0; i < n; i++) {
    const result = step(m, { profile });
    if (result.event.kind === "unsupported") return m;
    m = result.state;
    if (result.event.kind === "shutdown" || m.devices.exitValue !== null || (m.cpu.halted && result.event.kind === "halted")) return m;
  }
  return m;
}

/**
 * A run owns one memory draft and one working record across its steps (spec/step/step.ts): it
 * leaves its input alone, every Machine it hands out (onStep's before and after, the result)
 * stays as it was handed out, and it reaches exactly the machine that stepping one step at a
 * time reaches.
 */
function checkRun(start: Machine, n: number, profile = INTEL): void {
  const input = snapshot(start);
  const handedOut: { machine: Machine; seen: Snapshot }[] = [];
  const result = run(start, {
    profile,
    maxSteps: n,
    onStep: (before, r) => {
      handedOut.push({ machine: before, seen: snapshot(before) }, { machine: r.state, seen: snapshot(r.state) });
    },
  });
  const plain = run(start, { profile, maxSteps: n });
  expectUnchanged(start, input);
  for (const { machine, seen } of handedOut) expectUnchanged(machine, seen);
  expectUnchanged(plain.state, snapshot(result.state));
  expectUnchanged(stepped(start, plain.steps, profile), snapshot(plain.state));
}

/**
 * The engine's single steps (spec/step/step.ts Stepper: one working record and memory draft kept
 * from step to step) leave their input alone, every Machine handed out between steps stays as it
 * was handed out, and they take the steps `step` takes: the same events, the same machine at the end.
 */
function checkStepper(start: Machine, n: number, profile = INTEL): void {
  const input = snapshot(start);
  const stepper = new Stepper(start, { profile });
  const handedOut: { machine: Machine; seen: Snapshot }[] = [];
  let m = start;
  for (let i = 0; i < n; i++) {
    const before = stepper.machine();
    handedOut.push({ machine: before, seen: snapshot(before) });
    const expected = step(m, { profile });
    const event = stepper.step();
    expect(event).toEqual(expected.event);
    if (event.kind === "unsupported") break;
    m = expected.state;
    if (event.kind === "shutdown" || m.devices.exitValue !== null || (m.cpu.halted && event.kind === "halted")) break;
  }
  const end = stepper.machine();
  expectUnchanged(start, input);
  for (const { machine, seen } of handedOut) expectUnchanged(machine, seen);
  if (handedOut.length === n) expectUnchanged(end, snapshot(m));
}

describe("purity", () => {
  it("the field lists tell an empty array or object from a primitive, and nesting from a longer array", () => {
    const differ = (a: unknown, b: unknown) => expect(sameFields(flat(a), flat(b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(false);
    differ({ x: [] }, { x: 0 });
    differ({ x: {} }, { x: 0 });
    differ({ x: [] }, { x: {} });
    differ([[1], 2], [[1, 2]]);
    differ({ x: { y: 1 }, z: 2 }, { x: { y: 1, z: 2 } });
    expect(sameFields(flat({ x: [1, { y: 2n }] }), flat({ x: [1, { y: 2n }] }))).toBe(true);
  });

  const vectors = readdirSync(vectorPath("").replace(/\.json$/, "")).filter((f) => f.endsWith(".json"));

  it("stepping any vector's initial state never changes that state (intel and amd)", () => {
    for (const file of vectors) {
      const m = vectorMachine(file);
      checkSteps(m, 40, INTEL);
      checkSteps(m, 40, AMD);
    }
  });

  it("stepping random code at CPL 0 and CPL 3 never changes the input state", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), (user, code) => {
        checkSteps(withCode(user ? userMachine() : kernelMachine(), code), 4);
      }),
      { seed: 20261122, numRuns: 300 },
    );
  });

  it("the engine's single steps never change their input or a machine they handed out, and take step's steps", () => {
    for (const file of vectors) checkStepper(vectorMachine(file), 40, INTEL);
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), (user, code) => {
        checkStepper(withCode(user ? userMachine() : kernelMachine(), code), 6);
      }),
      { seed: 20261207, numRuns: 200 },
    );
  });

  it("a run never changes its input or a machine it handed out, and reaches what single steps reach", () => {
    for (const file of vectors) {
      const m = vectorMachine(file);
      checkRun(m, 40, INTEL);
      checkRun(m, 40, AMD);
    }
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), (user, code) => {
        checkRun(withCode(user ? userMachine() : kernelMachine(), code), 6);
      }),
      { seed: 20261206, numRuns: 200 },
    );
  });
});
