// Instruction bytes, fetched one at a time and only when the decoder needs them, so a fetch fault
// (#PF, #GP on a non-canonical RIP) is raised exactly for bytes that belong to the instruction.
import { fault, GP, isFault, type Fault } from "../fault.ts";
import { recordExecuted } from "../rules/execution-coverage.ts";

/** Fetches instruction byte `i` (0-based from RIP), or the fault that fetching it raises. */
export type FetchByte = (i: number) => number | Fault;

/** SDM Vol. 2A §2.3.11: no instruction is longer than 15 bytes, prefixes included. */
export const MAX_INSTRUCTION_LENGTH = 15;

export class ByteReader {
  /** The bytes fetched so far: the instruction once decoding has finished. */
  readonly bytes: number[] = [];

  constructor(private readonly fetch: FetchByte) {}

  /** The next byte. The 16th byte is never fetched: needing it is #GP(0) (DECODE-LENGTH). */
  u8(): number | Fault {
    const i = this.bytes.length;
    if (i >= MAX_INSTRUCTION_LENGTH) {
      // Exercised here, whether a step records the decoder's fault or a test decodes directly.
      recordExecuted("DECODE-LENGTH");
      return fault("DECODE-LENGTH", GP, 0);
    }
    const b = this.fetch(i);
    if (isFault(b)) return b;
    this.bytes.push(b);
    return b;
  }

  /** A little-endian unsigned field of `n` bytes (displacement, immediate, moffs). */
  uint(n: 1 | 2 | 4 | 8): bigint | Fault {
    // Assembled 32 bits at a time in plain numbers: one BigInt conversion per half, not per byte.
    const low = this.uint32(n === 8 ? 4 : n);
    if (isFault(low)) return low;
    if (n !== 8) return BigInt(low);
    const high = this.uint32(4);
    if (isFault(high)) return high;
    return (BigInt(high) << 32n) | BigInt(low);
  }

  private uint32(n: 1 | 2 | 4): number | Fault {
    let value = 0;
    for (let k = 0, scale = 1; k < n; k++, scale *= 256) {
      const b = this.u8();
      if (isFault(b)) return b;
      value += b * scale;
    }
    return value;
  }
}
