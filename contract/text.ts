// Text that came from outside (vector names and descriptions, file paths, JSON field names in error
// messages, emulator and kernel console output, protocol messages) made safe to print: the one
// escaping function of the project. A terminal acts on control characters — ESC starts sequences
// that move the cursor, clear the screen or retitle the window; a newline or carriage return
// starts what looks like a line of ringspec's own (a forged "70 passed, 0 failed") — and
// bidirectional overrides reorder what is shown. Each such character is shown as a visible
// escape (`\n`, `\r`, `\t`, `\x1b`, `\u202e`) instead.

/** C0 controls, DEL, C1 controls, the bidirectional embeddings, overrides and isolates, the line
 *  and paragraph separators, and lone surrogates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** The same, but for text whose own line breaks are kept (a kernel's console). */
const UNSAFE_KEEP_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeOne(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

export interface DisplayOptions {
  /** Keep line feeds and tabs (multi-line output such as a console); default false: one line. */
  readonly lines?: boolean;
}

/** `text` with every character that could act on a terminal shown as a visible escape. */
export function displayText(text: string, options: DisplayOptions = {}): string {
  const pattern = options.lines === true ? UNSAFE_KEEP_LINES : UNSAFE;
  pattern.lastIndex = 0;
  if (!pattern.test(text)) return text;
  pattern.lastIndex = 0;
  return text.replace(pattern, escapeOne);
}

/** JSON text (from JSON.stringify) with the characters JSON leaves raw but a terminal acts on
 *  (DEL, C1 controls, bidirectional controls, line separators) written as \u escapes: the same
 *  JSON value, safe to print. */
export function displayJson(json: string): string {
  return json.replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
