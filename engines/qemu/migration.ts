// QEMU's migration stream (what `migrate "exec:cat > FILE"` writes), read with the JSON
// description QEMU appends to it: that description names every field of every device section
// (type, size, array length, nested structs, subsections), so the `cpu`, `cpu_common` and `apic`
// sections can be decoded by name without knowing QEMU's structures.
//
// Stream layout (facts of QEMU's format): "QEVM", version 3; a configuration section (0x07);
// sections START (0x01) / PART (0x02) / END (0x03) / FULL (0x04), each followed by a footer
// (0x7E, section id); EOF (0x00); then 0x06, a 32-bit length and the JSON description. All
// integers are big-endian. The only iterative section here is "ram", whose records are skipped.
import { z } from "zod";
import { EngineError } from "../host/errors.ts";

const MAGIC = 0x5145564d; // "QEVM"
const VERSION = 3;
const SECTION = { EOF: 0x00, START: 0x01, PART: 0x02, END: 0x03, FULL: 0x04, SUBSECTION: 0x05, VMDESCRIPTION: 0x06, CONFIGURATION: 0x07, FOOTER: 0x7e } as const;
const RAM_FLAG = { ZERO: 0x02, MEM_SIZE: 0x04, PAGE: 0x08, EOS: 0x10, CONTINUE: 0x20 } as const;

// --- the JSON description -------------------------------------------------------------------------

export interface FieldDescription {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  readonly array_len?: number | undefined;
  readonly struct?: StructDescription | undefined;
  /** A `tmp` field carries its own fields. */
  readonly fields?: readonly FieldDescription[] | undefined;
}

export interface StructDescription {
  readonly vmsd_name: string;
  readonly version: number;
  readonly fields?: readonly FieldDescription[] | undefined;
  readonly subsections?: readonly StructDescription[] | undefined;
}

const FieldSchema: z.ZodType<FieldDescription> = z.lazy(() =>
  z.object({
    name: z.string(),
    type: z.string(),
    size: z.number().int().min(0),
    array_len: z.number().int().min(0).optional(),
    struct: StructSchema.optional(),
    fields: z.array(FieldSchema).optional(),
  }),
);

const StructSchema: z.ZodType<StructDescription> = z.lazy(() =>
  z.object({
    vmsd_name: z.string(),
    version: z.number().int(),
    fields: z.array(FieldSchema).optional(),
    subsections: z.array(StructSchema).optional(),
  }),
);

const DeviceSchema = z.object({
  name: z.string(),
  instance_id: z.number().int(),
  vmsd_name: z.string(),
  version: z.number().int(),
  fields: z.array(FieldSchema).optional(),
  subsections: z.array(StructSchema).optional(),
});
export type DeviceDescription = z.infer<typeof DeviceSchema>;

export const VmDescriptionSchema = z.object({ page_size: z.number().int().positive(), devices: z.array(DeviceSchema) });
export type VmDescription = z.infer<typeof VmDescriptionSchema>;

// --- reading --------------------------------------------------------------------------------------

class Reader {
  offset = 0;
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number, what: string): void {
    if (this.offset + n > this.bytes.length) throw new EngineError("protocol", `migration stream: ends inside ${what} (offset ${this.offset})`);
  }
  u8(what = "a byte"): number {
    this.need(1, what);
    return this.view.getUint8(this.offset++);
  }
  peek(): number | undefined {
    return this.offset < this.bytes.length ? this.view.getUint8(this.offset) : undefined;
  }
  u32(what = "a 32-bit field"): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, false);
    this.offset += 4;
    return v;
  }
  u64(what = "a 64-bit field"): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.offset, false);
    this.offset += 8;
    return v;
  }
  bytesOf(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  /** A string with a one-byte length. */
  str8(what: string): string {
    const n = this.u8(what);
    return Buffer.from(this.bytesOf(n, what)).toString("latin1");
  }
}

/** One device section's raw bytes (fields and subsections, without header and footer). */
export interface RawSection {
  readonly name: string;
  readonly instanceId: number;
  readonly version: number;
  readonly data: Uint8Array;
}

export interface MigrationStream {
  readonly machine: string;
  readonly capabilities: readonly string[];
  readonly description: VmDescription;
  /** Device sections by `name` or `name#instance` for instances other than 0. */
  readonly sections: ReadonlyMap<string, RawSection>;
}

/** Finds the JSON description at the end of the stream (0x06, length, JSON to the end). */
function findDescription(bytes: Uint8Array): { description: VmDescription; start: number } {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = text.lastIndexOf('{"page_size"');
  if (start < 5 || bytes[start - 5] !== SECTION.VMDESCRIPTION) throw new EngineError("protocol", "migration stream: no JSON description at its end");
  const length = new DataView(bytes.buffer, bytes.byteOffset + start - 4, 4).getUint32(0, false);
  if (start + length !== bytes.length) throw new EngineError("protocol", "migration stream: the JSON description's length does not reach the end of the stream");
  let json: unknown;
  try {
    json = JSON.parse(text.subarray(start).toString("utf8"));
  } catch (e) {
    throw new EngineError("protocol", `migration stream: the JSON description is not JSON (${(e as Error).message})`);
  }
  const parsed = VmDescriptionSchema.safeParse(json);
  if (!parsed.success) throw new EngineError("protocol", `migration stream: unexpected JSON description (${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message})`);
  return { description: parsed.data, start: start - 5 };
}

function fieldBytes(f: FieldDescription): number {
  return f.size * (f.array_len ?? 1);
}

/** Bytes a struct description occupies in the stream from `offset` (fields, then subsections). */
function skipStruct(r: Reader, fields: readonly FieldDescription[], subsections: readonly StructDescription[], where: string): void {
  for (const f of fields) r.bytesOf(fieldBytes(f), `${where}.${f.name}`);
  for (const sub of subsections) {
    const marker = r.u8(`${where}: subsection marker`);
    if (marker !== SECTION.SUBSECTION) throw new EngineError("protocol", `migration stream: ${where}: expected subsection ${sub.vmsd_name}, found byte 0x${marker.toString(16)}`);
    const name = r.str8("subsection name");
    if (name !== sub.vmsd_name) throw new EngineError("protocol", `migration stream: ${where}: expected subsection ${sub.vmsd_name}, found ${name}`);
    r.u32("subsection version");
    skipStruct(r, sub.fields ?? [], sub.subsections ?? [], `${where}/${name}`);
  }
}

function skipRam(r: Reader, pageSize: number, capabilities: readonly string[]): void {
  const ignoreShared = capabilities.includes("x-ignore-shared");
  const pageMask = BigInt(pageSize - 1);
  for (;;) {
    const word = r.u64("a RAM record");
    const flags = Number(word & pageMask);
    const address = word & ~pageMask;
    if (flags & RAM_FLAG.MEM_SIZE) {
      let total = address;
      while (total > 0n) {
        r.str8("a RAM block name");
        const length = r.u64("a RAM block length");
        if (ignoreShared) r.u64("a RAM block address");
        if (length > total) throw new EngineError("protocol", "migration stream: RAM blocks longer than the total");
        total -= length;
      }
    } else if (flags & (RAM_FLAG.ZERO | RAM_FLAG.PAGE)) {
      if (!(flags & RAM_FLAG.CONTINUE)) r.str8("a RAM block name");
      r.bytesOf(flags & RAM_FLAG.ZERO ? 1 : pageSize, "a RAM page");
    } else if (!(flags & RAM_FLAG.EOS)) {
      throw new EngineError("protocol", `migration stream: RAM record with flags 0x${flags.toString(16)} (offset ${r.offset - 8})`);
    }
    if (flags & RAM_FLAG.EOS) return;
  }
}

function readConfiguration(r: Reader): { machine: string; capabilities: string[] } {
  const length = r.u32("the machine name length");
  const machine = Buffer.from(r.bytesOf(length, "the machine name")).toString("latin1");
  const capabilities: string[] = [];
  while (r.peek() === SECTION.SUBSECTION) {
    r.u8();
    const name = r.str8("a configuration subsection name");
    r.u32("a configuration subsection version");
    if (name === "configuration/capabilities") {
      const count = r.u32("the capability count");
      for (let i = 0; i < count; i++) capabilities.push(r.str8("a capability name"));
    } else if (name === "configuration/target-page-bits") {
      r.u32("target-page-bits");
    } else {
      throw new EngineError("protocol", `migration stream: unknown configuration subsection ${name}`);
    }
  }
  return { machine, capabilities };
}

function sectionKey(name: string, instanceId: number): string {
  return instanceId === 0 ? name : `${name}#${instanceId}`;
}

/** Splits a migration stream into its device sections (RAM is skipped). */
export function parseMigrationStream(bytes: Uint8Array): MigrationStream {
  const { description, start: descriptionStart } = findDescription(bytes);
  const r = new Reader(bytes.subarray(0, descriptionStart + 5 + 4));
  if (r.u32("the magic") !== MAGIC) throw new EngineError("protocol", "migration stream: not a QEMU migration stream (bad magic)");
  const version = r.u32("the version");
  if (version !== VERSION) throw new EngineError("protocol", `migration stream: version ${version}, expected ${VERSION}`);
  const devices = new Map(description.devices.map((d) => [sectionKey(d.name, d.instance_id), d]));
  const sectionNames = new Map<number, string>();
  const sections = new Map<string, RawSection>();
  let machine = "";
  let capabilities: string[] = [];
  const footer = (id: number) => {
    if (r.peek() !== SECTION.FOOTER) return;
    r.u8();
    const got = r.u32("a section footer");
    if (got !== id) throw new EngineError("protocol", `migration stream: footer of section ${got} where ${id} ends`);
  };
  for (;;) {
    const type = r.u8("a section type");
    switch (type) {
      case SECTION.CONFIGURATION:
        ({ machine, capabilities } = readConfiguration(r));
        break;
      case SECTION.START:
      case SECTION.FULL: {
        const id = r.u32("a section id");
        const name = r.str8("a section name");
        const instanceId = r.u32("an instance id");
        const sectionVersion = r.u32("a section version");
        sectionNames.set(id, name);
        if (name === "ram") skipRam(r, description.page_size, capabilities);
        else {
          const key = sectionKey(name, instanceId);
          const device = devices.get(key);
          if (device === undefined) throw new EngineError("protocol", `migration stream: section ${key} is not in the JSON description`);
          const begin = r.offset;
          skipStruct(r, device.fields ?? [], device.subsections ?? [], key);
          sections.set(key, { name, instanceId, version: sectionVersion, data: bytes.subarray(begin, r.offset) });
        }
        footer(id);
        break;
      }
      case SECTION.PART:
      case SECTION.END: {
        const id = r.u32("a section id");
        const name = sectionNames.get(id);
        if (name !== "ram") throw new EngineError("protocol", `migration stream: iterative section ${name ?? id} is not RAM`);
        skipRam(r, description.page_size, capabilities);
        footer(id);
        break;
      }
      case SECTION.EOF:
        return { machine, capabilities, description, sections };
      default:
        throw new EngineError("protocol", `migration stream: unknown section type 0x${type.toString(16)} at offset ${r.offset - 1}`);
    }
  }
}

/** A decoded field value: integers as bigint, anything else as its raw bytes. */
export type FieldValue = bigint | Uint8Array;

const INTEGER = /^(u?int)(8|16|32|64)( equal)?$/;

/**
 * Decodes a section by its description into a flat map: `env.regs[3]`, `env.segs[1].base`,
 * `cpu/msr_smi_count:env.msr_smi_count` (subsection fields are prefixed with the subsection name).
 */
export function decodeSection(section: RawSection, description: VmDescription): Map<string, FieldValue> {
  const key = sectionKey(section.name, section.instanceId);
  const device = description.devices.find((d) => sectionKey(d.name, d.instance_id) === key);
  if (device === undefined) throw new EngineError("protocol", `migration stream: no description for ${key}`);
  const out = new Map<string, FieldValue>();
  const r = new Reader(section.data);
  const readFields = (fields: readonly FieldDescription[], prefix: string) => {
    for (const f of fields) {
      const count = f.array_len;
      for (let i = 0; i < (count ?? 1); i++) {
        const name = `${prefix}${f.name}${count === undefined ? "" : `[${i}]`}`;
        if (f.type === "struct" && f.struct !== undefined) {
          const begin = r.offset;
          readFields(f.struct.fields ?? [], `${name}.`);
          if (r.offset - begin !== f.size) throw new EngineError("protocol", `migration stream: ${key}: ${name} is ${r.offset - begin} bytes, described as ${f.size}`);
        } else if (f.type === "tmp" && f.fields !== undefined) {
          readFields(f.fields, `${name}.`);
        } else {
          const m = INTEGER.exec(f.type);
          const bytes = r.bytesOf(f.size, `${key}.${name}`);
          if (m !== null && Number(m[2]) / 8 === f.size) {
            let v = 0n;
            for (const b of bytes) v = (v << 8n) | BigInt(b);
            if (m[1] === "int") v = BigInt.asIntN(f.size * 8, v);
            out.set(name, v);
          } else out.set(name, bytes);
        }
      }
    }
  };
  readFields(device.fields ?? [], "");
  const readSubsections = (subs: readonly StructDescription[]) => {
    for (const sub of subs) {
      r.u8();
      r.str8("subsection name");
      r.u32("subsection version");
      readFields(sub.fields ?? [], `${sub.vmsd_name}:`);
      readSubsections(sub.subsections ?? []);
    }
  };
  readSubsections(device.subsections ?? []);
  if (r.offset !== section.data.length) throw new EngineError("protocol", `migration stream: ${key}: ${section.data.length - r.offset} bytes left after decoding`);
  return out;
}

/** A field that must be an integer. */
export function integerField(fields: ReadonlyMap<string, FieldValue>, name: string, section: string): bigint {
  const v = fields.get(name);
  if (typeof v !== "bigint") throw new EngineError("protocol", `migration stream: ${section} has no integer field ${name}`);
  return v;
}
