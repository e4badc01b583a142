// 64-bit values travel as "0x" + lowercase hex without leading zeros (vector README, "Fields").

export const MASK64 = (1n << 64n) - 1n;

/** "0x" + lowercase hex, no leading zeros; 0 is "0x0". */
export function hex(value: bigint | number): string {
  return "0x" + value.toString(16);
}

/** Two ASCII hex digits per byte value, as one little-endian 16-bit unit (first digit low). */
const DIGIT_PAIRS: Uint16Array = (() => {
  const digits = "0123456789abcdef";
  const table = new Uint16Array(256);
  for (let b = 0; b < 256; b++) table[b] = digits.charCodeAt(b >> 4) | (digits.charCodeAt(b & 15) << 8);
  return table;
})();
const LATIN1 = new TextDecoder("latin1");
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes as a plain lowercase hex string, two digits a byte (the `memory[].bytes` form). Whole
 *  guest pages go through here (states on the engine protocol): digit pairs from a table,
 *  decoded in one go. */
export function bytesToHex(bytes: Uint8Array): string {
  if (!LITTLE_ENDIAN) {
    let out = "";
    for (const b of bytes) out += b.toString(16).padStart(2, "0");
    return out;
  }
  const pairs = new Uint16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) pairs[i] = DIGIT_PAIRS[bytes[i]!]!;
  return LATIN1.decode(pairs);
}

/** Hex digit values by character code (the text is validated before it gets here; anything
 *  else reads as 0). A table: one load per digit, no branch (whole guest memories come through). */
const NIBBLE: Uint8Array = (() => {
  const table = new Uint8Array(128);
  for (let d = 0; d < 16; d++) {
    table["0123456789abcdef".charCodeAt(d)] = d;
    table["0123456789ABCDEF".charCodeAt(d)] = d;
  }
  return table;
})();

/** Decodes `count` bytes of the hex string `text`, from byte `from` on, into `target` at `at`. */
export function hexInto(text: string, from: number, count: number, target: Uint8Array, at: number): void {
  for (let k = 0, c = 2 * from; k < count; k++, c += 2) {
    target[at + k] = (NIBBLE[text.charCodeAt(c) & 127]! << 4) | NIBBLE[text.charCodeAt(c + 1) & 127]!;
  }
}

/** Node's Buffer where there is one (a global, no import: contract/ also runs in browsers). */
interface NativeBuffer {
  write(text: string, offset: number, length: number, encoding: "hex"): number;
}
const NATIVE = (globalThis as { Buffer?: { from(buffer: ArrayBufferLike, byteOffset?: number, length?: number): NativeBuffer } }).Buffer;

/** Decodes hex digits: `decode(text, from, count, target, at)` puts bytes `from`..`from+count-1` of
 *  the validated hex string `text` at `target[at]`. */
export type HexDecoder = (text: string, from: number, count: number, target: Uint8Array, at: number) => void;

/**
 * A HexDecoder for one batch of writes (contract/state.ts: one state's pages). Node's native
 * decoder writes straight into the target where there is one (no intermediate buffer to copy
 * from), through one Buffer over the target's whole ArrayBuffer, made again only when the
 * ArrayBuffer changes: pages cut from one slab share it, so a state's pages need one or two Buffers
 * instead of one per page written (making a Buffer costs about as much as decoding a small region).
 * The decoder holds the last ArrayBuffer only while the batch's caller holds the decoder. Without
 * Node, the digit table (hexInto).
 */
export function hexDecoder(): HexDecoder {
  if (NATIVE === undefined) return hexInto;
  let buffer: ArrayBufferLike | undefined;
  let view: NativeBuffer | undefined;
  return (text, from, count, target, at) => {
    if (target.buffer !== buffer) view = NATIVE.from((buffer = target.buffer));
    // A substring of a flat string is a view (no copy); the whole text when it fits as it is.
    // At most to the target's end, as a Buffer over the target alone would write; nothing at or
    // past it (a negative count would swap substring's bounds; an offset past the ArrayBuffer
    // throws), as hexInto writes nothing there.
    const n = Math.max(0, Math.min(count, target.length - at));
    if (n === 0) return;
    view!.write(from === 0 && n << 1 === text.length ? text : text.substring(from << 1, (from + n) << 1), target.byteOffset + at, n, "hex");
  };
}

export function hexToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length >> 1);
  hexInto(text, 0, out.length, out, 0);
  return out;
}

/** Whether `text` is an even number of hex digits (a `memory[].bytes` string). A character class
 *  repeated, not a repeated group: V8 runs it as one native loop, with no backtracking stack (a
 *  repeated group overflows the stack on a few MiB of digits), several times faster than a loop
 *  over charCodeAt here (every vector's memory goes through it). */
export function isHexBytes(text: string): boolean {
  return (text.length & 1) === 0 && HEX_DIGITS_ONLY.test(text);
}
const HEX_DIGITS_ONLY = /^[0-9a-fA-F]*$/;
