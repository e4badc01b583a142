// A minimal WebAssembly binary writer: one module importing one memory ("e" "m") and exporting one
// function ("f"), with the handful of instructions compile/wasm-loop.ts emits. WebAssembly is
// part of the JavaScript platform (no dependency); what it gives the block compiler is native
// 64-bit integer arithmetic, which JavaScript lacks (numbers are int32 halves or doubles, BigInt is
// boxed). Encoding rules: WebAssembly core specification, "Binary Format" (LEB128 integers,
// sections 1 type, 2 import, 3 function, 7 export, 10 code).
//
// Not a cache, no state: a pure function from an instruction list to module bytes.

/** Value types. */
export const I32 = 0x7f, I64 = 0x7e;

/** Opcodes used (Binary Format, "Instructions"). */
export const W = {
  loop: 0x03, end: 0x0b, brIf: 0x0d, localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Store: 0x36, i64Load: 0x29, i64Store: 0x37, i32Const: 0x41, i64Const: 0x42,
  i32Eqz: 0x45, i32Ne: 0x47, i64Eqz: 0x50, i64Eq: 0x51, i64Ne: 0x52, i64LtU: 0x54,
  i32Sub: 0x6b, i32And: 0x71, i32Or: 0x72, i32Xor: 0x73,
  i64Popcnt: 0x7b, i64Add: 0x7c, i64Sub: 0x7d, i64And: 0x83, i64Or: 0x84, i64Xor: 0x85,
  i64ExtendI32U: 0xad,
} as const;

/** Unsigned LEB128 of a non-negative int32. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of a 64-bit value (i64.const and i32.const immediates). */
export function sleb(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asIntN(64, value);
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function vec(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: readonly number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  return vec([...s].map((c) => [c.charCodeAt(0)]));
}

/**
 * A module of one function `f(params) → results` with `locals` (value types, after the params)
 * and `body` (instructions, without the final `end`), importing a memory of at least one page as
 * ("e", "m").
 */
export function moduleBytes(params: readonly number[], results: readonly number[], locals: readonly number[],
  body: readonly number[]): Uint8Array {
  const type = [0x60, ...vec(params.map((t) => [t])), ...vec(results.map((t) => [t]))];
  const importMemory = [...name("e"), ...name("m"), 0x02, 0x00, ...uleb(1)];
  const exportF = [...name("f"), 0x00, ...uleb(0)];
  // Locals as runs of one type each.
  const runs: number[][] = [];
  for (const t of locals) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === t) last[0]!++;
    else runs.push([1, t]);
  }
  const func = [...vec(runs.map(([count, t]) => [...uleb(count!), t!])), ...body, W.end];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([type])),
    ...section(2, vec([importMemory])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([exportF])),
    ...section(10, vec([[...uleb(func.length), ...func]])),
  ]);
}
