// Legacy prefixes and REX (SDM Vol. 2A §2.1.1, §2.2.1). Prefixes may come in any order and repeat;
// the scan stops at the first byte that is not a prefix, which is the (first) opcode byte.
import { isFault, type Fault } from "../fault.ts";
import type { SregName } from "./instruction.ts";
import type { ByteReader } from "./reader.ts";

export interface Prefixes {
  /** 66: operand-size override. */
  readonly operandSizeOverride: boolean;
  /** 67: address-size override. */
  readonly addressSizeOverride: boolean;
  /** F0. */
  readonly lock: boolean;
  /** The last of F3 ("rep") and F2 ("repne"). */
  readonly rep: "rep" | "repne" | null;
  /** The segment override that takes effect (in 64-bit mode only FS or GS ever does). */
  readonly segment: SregName | null;
  /** The REX byte (40–4F) immediately before the opcode, or 0. */
  readonly rex: number;
}

const SEGMENT_PREFIX: Readonly<Record<number, SregName>> = {
  0x26: "es", 0x2e: "cs", 0x36: "ss", 0x3e: "ds", 0x64: "fs", 0x65: "gs",
};

/** Reads the prefixes and returns them with the first opcode byte. */
export function scanPrefixes(r: ByteReader, mode64: boolean): { prefixes: Prefixes; opcode: number } | Fault {
  let operandSizeOverride = false, addressSizeOverride = false, lock = false;
  let rep: Prefixes["rep"] = null;
  let segment: SregName | null = null;
  let rex = 0;
  for (;;) {
    const b = r.u8();
    if (isFault(b)) return b;
    if (mode64 && (b & 0xf0) === 0x40) {
      // A later REX replaces an earlier one; a legacy prefix after it cancels it (below).
      rex = b;
      continue;
    }
    switch (b) {
      case 0x66: operandSizeOverride = true; break;
      case 0x67: addressSizeOverride = true; break;
      case 0xf0: lock = true; break;
      case 0xf3: rep = "rep"; break;
      case 0xf2: rep = "repne"; break;
      case 0x26: case 0x2e: case 0x36: case 0x3e:
        // SDM Vol. 1 §3.3.7.1: in 64-bit mode ES/CS/SS/DS overrides are ignored ("null prefixes"),
        // so they neither select a segment nor cancel an FS/GS override.
        if (!mode64) segment = SEGMENT_PREFIX[b] ?? null;
        break;
      case 0x64: case 0x65:
        segment = SEGMENT_PREFIX[b] ?? null;
        break;
      default:
        return { prefixes: { operandSizeOverride, addressSizeOverride, lock, rep, segment, rex }, opcode: b };
    }
    // SDM Vol. 2A §2.2.1: a REX prefix must immediately precede the opcode; otherwise it is ignored.
    rex = 0;
  }
}
