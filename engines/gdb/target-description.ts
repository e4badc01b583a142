// GDB target descriptions (the `target.xml` a stub serves, and the files it includes): the
// register list in `g`-packet order with each register's number and size. Only the parts that
// matter are read: <reg> elements and <xi:include> references; attributes are validated.
import { z } from "zod";
import { EngineError } from "../host/errors.ts";

export interface RegisterDescription {
  readonly name: string;
  /** Register number for `p`/`P` packets. */
  readonly number: number;
  readonly bits: number;
  /** Byte offset in the `g` packet reply. */
  readonly offset: number;
}

export interface TargetDescription {
  readonly architecture: string | undefined;
  readonly registers: readonly RegisterDescription[];
  /** Bytes of a `g` reply. */
  readonly size: number;
}

const RegAttributes = z.object({
  name: z.string().min(1),
  bitsize: z.string().regex(/^[0-9]+$/).transform(Number),
  regnum: z.string().regex(/^[0-9]+$/).transform(Number).optional(),
});

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)')/g)) out[m[1]!] = m[3] ?? m[4] ?? "";
  return out;
}

/** The elements of interest, in document order. */
export function scanElements(xml: string): ({ kind: "reg"; attributes: Record<string, string> } | { kind: "include"; href: string } | { kind: "architecture"; text: string })[] {
  const out: ({ kind: "reg"; attributes: Record<string, string> } | { kind: "include"; href: string } | { kind: "architecture"; text: string })[] = [];
  const withoutComments = xml.replace(/<!--[\s\S]*?-->/g, "");
  for (const m of withoutComments.matchAll(/<(reg|xi:include)\b([^>]*?)\/?>|<architecture>([^<]*)<\/architecture>/g)) {
    if (m[3] !== undefined) out.push({ kind: "architecture", text: m[3].trim() });
    else if (m[1] === "reg") out.push({ kind: "reg", attributes: attributes(m[2]!) });
    else {
      const href = attributes(m[2]!).href;
      if (href === undefined) throw new EngineError("protocol", "target description: xi:include without href");
      out.push({ kind: "include", href });
    }
  }
  return out;
}

/** Reads `target.xml` through `read` (which fetches any annex), following includes. */
export async function loadTargetDescription(read: (annex: string) => Promise<string | null>): Promise<TargetDescription | null> {
  const root = await read("target.xml");
  if (root === null) return null;
  const registers: RegisterDescription[] = [];
  let architecture: string | undefined;
  let nextNumber = 0;
  let offset = 0;
  const seen = new Set<string>();
  const walk = async (xml: string, depth: number): Promise<void> => {
    if (depth > 8) throw new EngineError("protocol", "target description: includes nested too deeply");
    for (const element of scanElements(xml)) {
      if (element.kind === "architecture") architecture ??= element.text;
      else if (element.kind === "include") {
        if (seen.has(element.href)) continue;
        seen.add(element.href);
        const text = await read(element.href);
        if (text === null) throw new EngineError("protocol", `target description: cannot read ${element.href}`);
        await walk(text, depth + 1);
      } else {
        const parsed = RegAttributes.safeParse(element.attributes);
        if (!parsed.success) throw new EngineError("protocol", `target description: bad <reg> (${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message})`);
        const number = parsed.data.regnum ?? nextNumber;
        nextNumber = number + 1;
        if (parsed.data.bitsize % 8 !== 0) throw new EngineError("protocol", `target description: register ${parsed.data.name} is ${parsed.data.bitsize} bits`);
        registers.push({ name: parsed.data.name, number, bits: parsed.data.bitsize, offset });
        offset += parsed.data.bitsize / 8;
      }
    }
  };
  await walk(root, 0);
  // The `g` packet lists registers by number.
  registers.sort((a, b) => a.number - b.number);
  let at = 0;
  const placed = registers.map((reg) => {
    const r = { ...reg, offset: at };
    at += reg.bits / 8;
    return r;
  });
  return { architecture, registers: placed, size: at };
}

/** Little-endian value of one register from a `g` reply (undefined if the reply is too short). */
export function registerValue(g: Uint8Array, reg: RegisterDescription): bigint | undefined {
  const n = reg.bits / 8;
  if (reg.offset + n > g.length) return undefined;
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(g[reg.offset + i]!);
  return v;
}

/** A register value as little-endian bytes of its size. */
export function registerBytes(reg: RegisterDescription, value: bigint): Uint8Array {
  const n = reg.bits / 8;
  const out = new Uint8Array(n);
  let v = BigInt.asUintN(reg.bits, value);
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
