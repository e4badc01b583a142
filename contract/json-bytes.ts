// JSON text (UTF-8 bytes) → plain values, for documents from outside: RFC 8259 with caps on
// nesting depth, number of values and string length, checked while parsing (a file cannot make
// the parser build more than the caps allow), and without one string of the whole text — a state
// holding the whole page budget is more hex digits than V8's longest string (2^29 - 24), so
// JSON.parse could not read what ringspec writes. Iterative (no recursion on nesting). Errors are
// FormatError lines naming the JSON path where parsing stopped, or the line and column.
import { FormatError } from "./errors.ts";
import { MAX_JSON_DEPTH, MAX_JSON_STRING_BYTES, MAX_JSON_VALUES } from "./limits.ts";

export interface JsonLimits {
  readonly maxDepth: number;
  readonly maxValues: number;
  readonly maxStringBytes: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = {
  maxDepth: MAX_JSON_DEPTH,
  maxValues: MAX_JSON_VALUES,
  maxStringBytes: MAX_JSON_STRING_BYTES,
};

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Byte classes: 1 = a byte that ends a plain string run (`"`, `\`, a control character). */
const STRING_STOP = new Uint8Array(256);
STRING_STOP[0x22] = 1;
STRING_STOP[0x5c] = 1;
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;

interface Frame {
  readonly container: unknown[] | Record<string, unknown>;
  readonly isArray: boolean;
  /** The key being filled (objects), for paths. */
  key: string;
}

/** `memory[3].bytes`, from the open containers. */
function pathOf(stack: readonly Frame[]): string {
  let out = "";
  for (const f of stack) {
    if (f.isArray) out += `[${(f.container as unknown[]).length}]`;
    else if (f.key !== "") out += out === "" ? f.key : `.${f.key}`;
  }
  return out === "" ? "$" : out;
}

function lineColumn(bytes: Uint8Array, at: number): string {
  let line = 1, column = 1;
  for (let i = 0; i < at && i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      column = 1;
    } else column++;
  }
  return `line ${line} column ${column}`;
}

function describeByte(b: number | undefined): string {
  if (b === undefined) return "end of file";
  if (b >= 0x21 && b < 0x7f) return JSON.stringify(String.fromCharCode(b));
  return `byte 0x${b.toString(16).padStart(2, "0")}`;
}

/** Parses a JSON document. Throws FormatError (one line). */
export function parseJsonBytes(bytes: Uint8Array, limits: JsonLimits = DEFAULT_JSON_LIMITS): unknown {
  const fast = parseNatively(bytes, limits);
  return fast !== NOT_NATIVELY ? fast : parseBytes(bytes, limits);
}

/** A document parsed without its nesting depth walked (parseJsonBytesDeferringDepth). */
export interface DepthDeferred {
  readonly value: unknown;
  /** True when every cap is decided (as by parseJsonBytes); false when the depth is not yet:
   *  the caller decides it (nestingWithin) before it uses the value or refuses it, and refuses a
   *  document nested too deep with parseJsonBytes's error (parseJsonBytes again throws it). */
  readonly depthChecked: boolean;
}

/**
 * parseJsonBytes, but a document for which the depth is the only cap in question (every vector
 * file: see withinCaps) comes back without its containers walked, `depthChecked` false. For a
 * caller whose schema walks every part of a document it accepts and is less than maxDepth deep
 * (contract/load.ts): a document the schema accepts is within the depth cap but for the parts
 * the schema passes over, which the caller walks; one it refuses is walked whole, so a document
 * nested too deep is refused for its depth, as parseJsonBytes refuses it. The walk was a tenth of
 * a fresh process's first pass over the project's 70 vectors (mostly optimising it).
 */
export function parseJsonBytesDeferringDepth(bytes: Uint8Array, limits: JsonLimits = DEFAULT_JSON_LIMITS): DepthDeferred {
  if (bytes.length <= NATIVE_MAX_BYTES) {
    let value: unknown;
    try {
      value = JSON.parse(UTF8_KEEP_BOM.decode(bytes));
    } catch {
      value = NOT_NATIVELY;
    }
    if (value !== NOT_NATIVELY) {
      if (typeof value === "object" && value !== null && onlyDepthInQuestion(bytes.length, limits)) return { value, depthChecked: false };
      if (withinCaps(value, bytes.length, limits)) return { value, depthChecked: true };
    }
  }
  return { value: parseBytes(bytes, limits), depthChecked: true };
}

/** Whether `value`, a container at nesting level `level` of its document (the document itself is
 *  level 1), has no container nested deeper than the depth cap. */
export function nestingWithin(value: unknown, level = 1, limits: JsonLimits = DEFAULT_JSON_LIMITS): boolean {
  return typeof value !== "object" || value === null || depthWithin(value, limits.maxDepth - level + 1);
}

/** Documents up to this size may go through JSON.parse (their text is far below V8's longest string). */
const NATIVE_MAX_BYTES = 64 * 1024 * 1024;
const NOT_NATIVELY: unique symbol = Symbol("not natively");
/** Keeps a leading BOM as U+FEFF, which JSON.parse refuses as the byte parser does. */
const UTF8_KEEP_BOM = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The common case, natively: a document that is valid UTF-8 and valid JSON, and within the caps,
 * parses with JSON.parse to the same value (RFC 8259 both; `__proto__` an own property both; the
 * last of duplicate keys both). The caps are checked on the result (values and depth exactly; a
 * string's bytes bounded by 6 per UTF-16 unit, the longest escape). Anything else (an error to
 * word, a cap to enforce, a huge document) returns NOT_NATIVELY and takes the byte parser.
 */
function parseNatively(bytes: Uint8Array, limits: JsonLimits): unknown {
  if (bytes.length > NATIVE_MAX_BYTES) return NOT_NATIVELY;
  let value: unknown;
  try {
    value = JSON.parse(UTF8_KEEP_BOM.decode(bytes));
  } catch {
    return NOT_NATIVELY;
  }
  return withinCaps(value, bytes.length, limits) ? value : NOT_NATIVELY;
}

/**
 * Whether a parsed document of `textBytes` bytes stays within the caps. What the text's length
 * already bounds is not checked again: a string has at most as many UTF-16 units as it has UTF-8
 * bytes (an escape is longer than what it stands for), and each value but the first takes at least
 * two bytes (itself, and the `[`, `,` or `:` before it), so a vector file needs only its depth
 * checked. Containers wait on a stack with their depths (no object a value, no recursion); this
 * walk runs over every value of every document loaded.
 */
function withinCaps(value: unknown, textBytes: number, limits: JsonLimits): boolean {
  const maxUnits = limits.maxStringBytes / 6;
  const checkLengths = textBytes > maxUnits;
  const countValues = !valuesBoundedByLength(textBytes, limits);
  if (typeof value === "string") return !checkLengths || value.length <= maxUnits;
  if (typeof value !== "object" || value === null) return true;
  // Only the depth to check (every vector file, every state file of a few MiB): a recursive walk
  // of the containers, at most maxDepth calls deep, no array of values made per object (half the
  // time of the general walk below).
  if (!checkLengths && !countValues) return depthWithin(value, limits.maxDepth);
  let values = 1;
  const containers: object[] = [value];
  const depths: number[] = [1];
  for (let container = containers.pop(); container !== undefined; container = containers.pop()) {
    const depth = depths.pop()!;
    if (depth > limits.maxDepth) return false;
    let items: unknown[];
    if (Array.isArray(container)) items = container;
    else {
      if (checkLengths) for (const key of Object.keys(container)) if (key.length > maxUnits) return false;
      items = Object.values(container);
    }
    values += items.length;
    if (countValues && values > limits.maxValues) return false;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (typeof item === "string") {
        if (checkLengths && item.length > maxUnits) return false;
      } else if (typeof item === "object" && item !== null) {
        containers.push(item);
        depths.push(depth + 1);
      }
    }
  }
  return true;
}

/** A text of `textBytes` bytes has at most (textBytes + 1) / 2 values (withinCaps). */
const valuesBoundedByLength = (textBytes: number, limits: JsonLimits): boolean => (textBytes + 1) / 2 <= limits.maxValues;

/** Whether the text's length alone keeps a parsed document within every cap but its depth. */
const onlyDepthInQuestion = (textBytes: number, limits: JsonLimits): boolean =>
  textBytes <= limits.maxStringBytes / 6 && valuesBoundedByLength(textBytes, limits);

/** Whether no container is nested more than `levels` deep within `container` (itself level 1). */
function depthWithin(container: object, levels: number): boolean {
  if (levels === 0) return false;
  if (Array.isArray(container)) {
    for (let i = 0; i < container.length; i++) {
      const item: unknown = container[i];
      if (typeof item === "object" && item !== null && !depthWithin(item, levels - 1)) return false;
    }
    return true;
  }
  // for-in, not Object.keys: no array of keys made per object (JSON.parse's objects inherit no
  // enumerable keys; an own `__proto__` is visited as its own).
  for (const key in container) {
    const item = (container as Record<string, unknown>)[key];
    if (typeof item === "object" && item !== null && !depthWithin(item, levels - 1)) return false;
  }
  return true;
}

/** The byte parser: caps checked while parsing, errors worded with the JSON path (exported for
 *  the tests that hold the native path to it). */
export function parseBytes(bytes: Uint8Array, limits: JsonLimits): unknown {
  let pos = 0;
  const n = bytes.length;
  let values = 0;
  const stack: Frame[] = [];

  const fail = (what: string, at = pos): never => {
    const where = stack.length === 0 ? lineColumn(bytes, at) : `${pathOf(stack)} (${lineColumn(bytes, at)})`;
    throw new FormatError(`not valid JSON (${what} at ${where})`);
  };
  const skipSpace = () => {
    while (pos < n) {
      const c = bytes[pos]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const count = () => {
    if (++values > limits.maxValues) {
      throw new FormatError(`${pathOf(stack)}: more than ${limits.maxValues.toLocaleString("en-US")} JSON values in one document`);
    }
  };

  const parseString = (): string => {
    // bytes[pos] is the opening quote.
    const start = ++pos;
    let parts: string[] | null = null;
    let runStart = start;
    for (;;) {
      // The scan runs on a local: `pos` lives in the closures' shared context, and a load and a
      // store of it per byte made this loop a third of loading a vector (hex strings are long).
      let p = pos;
      while (p < n && STRING_STOP[bytes[p]!] === 0) p++;
      pos = p;
      if (pos - start > limits.maxStringBytes) {
        throw new FormatError(`${pathOf(stack)}: a string longer than ${limits.maxStringBytes.toLocaleString("en-US")} bytes`);
      }
      if (pos >= n) fail("unterminated string", start - 1);
      const c = bytes[pos]!;
      if (c === 0x22) break;
      if (c < 0x20) fail("a control character in a string");
      // A backslash escape.
      (parts ??= []).push(decode(runStart, pos));
      const e = bytes[pos + 1];
      pos += 2;
      switch (e) {
        case 0x22: parts.push('"'); break;
        case 0x5c: parts.push("\\"); break;
        case 0x2f: parts.push("/"); break;
        case 0x62: parts.push("\b"); break;
        case 0x66: parts.push("\f"); break;
        case 0x6e: parts.push("\n"); break;
        case 0x72: parts.push("\r"); break;
        case 0x74: parts.push("\t"); break;
        case 0x75: {
          let code = 0;
          for (let k = 0; k < 4; k++) {
            const h = hexValue(bytes[pos + k]);
            if (h < 0) fail("a bad \\u escape", pos - 2);
            code = code * 16 + h;
          }
          pos += 4;
          parts.push(String.fromCharCode(code));
          break;
        }
        default:
          fail("a bad escape", pos - 2);
      }
      runStart = pos;
    }
    const last = decode(runStart, pos);
    pos++; // the closing quote
    if (parts === null) return last;
    parts.push(last);
    return parts.join("");
  };

  const decode = (from: number, to: number): string => {
    if (from === to) return "";
    // Plain ASCII (hex digits, field names) is the common case: no decoder round trip needed for short runs.
    if (to - from <= 32) {
      let ascii = true;
      for (let i = from; i < to; i++) if (bytes[i]! >= 0x80) ascii = false;
      if (ascii) return String.fromCharCode.apply(null, bytes.subarray(from, to) as unknown as number[]);
    }
    try {
      return UTF8.decode(bytes.subarray(from, to));
    } catch {
      return fail("bytes that are not UTF-8", from);
    }
  };

  const parseNumber = (): number => {
    const start = pos;
    if (bytes[pos] === 0x2d) pos++;
    if (bytes[pos] === 0x30) pos++;
    else if (isDigit(bytes[pos])) while (isDigit(bytes[pos])) pos++;
    else fail("a bad number", start);
    if (bytes[pos] === 0x2e) {
      pos++;
      if (!isDigit(bytes[pos])) fail("a bad number", start);
      while (isDigit(bytes[pos])) pos++;
    }
    if (bytes[pos] === 0x65 || bytes[pos] === 0x45) {
      pos++;
      if (bytes[pos] === 0x2b || bytes[pos] === 0x2d) pos++;
      if (!isDigit(bytes[pos])) fail("a bad number", start);
      while (isDigit(bytes[pos])) pos++;
    }
    if (pos - start > 400) fail("a number too long", start);
    return Number(String.fromCharCode.apply(null, bytes.subarray(start, pos) as unknown as number[]));
  };

  const literal = (text: string, value: unknown): unknown => {
    for (let k = 0; k < text.length; k++) if (bytes[pos + k] !== text.charCodeAt(k)) fail(`unexpected ${describeByte(bytes[pos])}`);
    pos += text.length;
    return value;
  };

  /** Puts a finished value into the innermost container (or returns it as the document). */
  let result: unknown;
  let done = false;
  const place = (value: unknown) => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      result = value;
      done = true;
    } else if (top.isArray) (top.container as unknown[]).push(value);
    else if (top.key === "__proto__") Object.defineProperty(top.container, top.key, { value, writable: true, enumerable: true, configurable: true });
    else (top.container as Record<string, unknown>)[top.key] = value;
  };

  /** An object's next `"name":` (after `{` or a comma), into the frame's key. */
  const readFieldName = (frame: Frame) => {
    skipSpace();
    if (bytes[pos] !== 0x22) fail(`expected a field name, found ${describeByte(bytes[pos])}`);
    frame.key = parseString();
    skipSpace();
    if (bytes[pos] !== 0x3a) fail(`expected ":", found ${describeByte(bytes[pos])}`);
    pos++;
  };

  // A value is expected at each turn of this loop; containers are opened and closed in place.
  for (;;) {
    skipSpace();
    if (pos >= n) fail("unexpected end of file");
    const c = bytes[pos]!;
    count();
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= limits.maxDepth) throw new FormatError(`${pathOf(stack)}: nested more than ${limits.maxDepth} levels deep`);
      const isArray = c === 0x5b;
      const frame: Frame = { container: isArray ? [] : {}, isArray, key: "" };
      pos++;
      skipSpace();
      const close = isArray ? 0x5d : 0x7d;
      if (bytes[pos] === close) {
        pos++;
        place(frame.container);
      } else {
        stack.push(frame);
        if (!isArray) readFieldName(frame);
        continue;
      }
    } else if (c === 0x22) place(parseString());
    else if (c === 0x2d || isDigit(c)) place(parseNumber());
    else if (c === 0x74) place(literal("true", true));
    else if (c === 0x66) place(literal("false", false));
    else if (c === 0x6e) place(literal("null", null));
    else fail(`unexpected ${describeByte(c)}`);
    // After a value: a comma (next element or field), or closing brackets.
    for (;;) {
      if (done) {
        skipSpace();
        if (pos < n) fail(`unexpected ${describeByte(bytes[pos])} after the document`);
        return result;
      }
      skipSpace();
      const top = stack[stack.length - 1]!;
      const b = bytes[pos];
      if (b === 0x2c) {
        pos++;
        if (!top.isArray) readFieldName(top);
        break;
      }
      if (b === (top.isArray ? 0x5d : 0x7d)) {
        pos++;
        stack.pop();
        place(top.container);
        continue;
      }
      fail(`expected "," or "${top.isArray ? "]" : "}"}", found ${describeByte(b)}`);
    }
  }
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}
