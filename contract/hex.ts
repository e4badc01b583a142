// 64-bit values travel as "0x" + lowercase hex without leading zeros (vector README, "Fields").

export const MASK64 = (1n << 64n) - 1n;

/** "0x" + lowercase hex, no leading zeros; 0 is "0x0". */
export function hex(value: bigint | number): string {
  return "0x" + value.toString(16);
}

/** Bytes as a plain lowercase hex string, two digits a byte (the `memory[].bytes` form). */
export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function hexToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
