// Where commands write. The process uses stdout/stderr; tests pass collectors.
import { displayText } from "../contract/text.ts";

export interface Io {
  /** Text to stdout, written as given (include the newline). */
  readonly out: (text: string) => void;
  /** One line to stderr (the newline is added). */
  readonly err: (line: string) => void;
}

/** The process's streams. Commands escape what came from input where they print it
 *  (contract/text.ts displayText); this is the backstop: nothing that reaches the terminal carries
 *  a control character but the line breaks and tabs of stdout, and an stderr line stays one line. */
export const processIo: Io = {
  out: (text) => {
    process.stdout.write(displayText(text, { lines: true }));
  },
  err: (line) => {
    process.stderr.write(displayText(line) + "\n");
  },
};

/** Collects stdout text into chunks of about 64 KiB before handing them on (long traces). */
export class BufferedOut {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly io: Io) {}

  line(text: string): void {
    this.parts.push(text, "\n");
    this.size += text.length + 1;
    if (this.size >= 65536) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    this.io.out(this.parts.join(""));
    this.parts = [];
    this.size = 0;
  }
}
