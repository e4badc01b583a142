// Where commands write. The process uses stdout/stderr; tests pass collectors.
export interface Io {
  /** Text to stdout, written as given (include the newline). */
  readonly out: (text: string) => void;
  /** One line to stderr (the newline is added). */
  readonly err: (line: string) => void;
}

export const processIo: Io = {
  out: (text) => {
    process.stdout.write(text);
  },
  err: (line) => {
    process.stderr.write(line + "\n");
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
