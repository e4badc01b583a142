// Bochs's internal debugger over its stdin/stdout: a command goes in as a line, its output comes
// back followed by the prompt `<bochs:N> `. The boot part runs from a command file (`-rc`); the
// debugger then reads further commands from stdin, which is how the engine steps interactively.
import { ByteStream } from "../host/stream.ts";
import { EngineError } from "../host/errors.ts";

const PROMPT = /<bochs:\d+> /;

function takeUntilPrompt(bytes: Buffer): { value: string; used: number } | undefined {
  const text = bytes.toString("latin1");
  const m = PROMPT.exec(text);
  if (m === null) return undefined;
  return { value: text.slice(0, m.index), used: m.index + m[0].length };
}

/** What to report when the debugger's connection ends: Bochs exited, its log may say why. */
export type ExplainClose = (closed: EngineError) => Promise<EngineError>;

export class BochsDebugger {
  constructor(
    private readonly stream: ByteStream,
    private readonly timeoutMs: number,
    private readonly explainClose: ExplainClose = async (closed) => closed,
  ) {}

  /** `work`, with a closed connection (kind "crash") replaced by what `explainClose` makes of it. */
  private async explained<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof EngineError && e.kind === "crash") throw await this.explainClose(e);
      throw e;
    }
  }

  /** Output up to the first prompt (the command file's output). */
  async ready(timeoutMs: number): Promise<string> {
    return this.explained(() => this.stream.take(takeUntilPrompt, timeoutMs, "the debugger prompt"));
  }

  /** Runs one command and returns its output (without the echoed command line). */
  async command(line: string, timeoutMs = this.timeoutMs): Promise<string> {
    if (/[\n\r]/.test(line)) throw new EngineError("usage", "bochs: a debugger command is one line");
    const out = await this.explained(async () => {
      this.stream.write(line + "\n");
      return this.stream.take(takeUntilPrompt, timeoutMs, `the output of "${line}"`);
    });
    // The debugger echoes the line it read.
    const nl = out.indexOf("\n");
    const first = nl === -1 ? out : out.slice(0, nl);
    return first.trim() === line.trim() ? out.slice(nl + 1) : out;
  }

  /**
   * Output until the prompt, after the caller interrupted a running command. The command may have
   * finished just before the interrupt arrived (then Bochs prompts twice): a marker command
   * brings the exchange back in step, whatever came before its answer is returned.
   */
  async afterInterrupt(timeoutMs: number): Promise<string> {
    const marker = `show "cpu0.icount"`;
    return this.explained(async () => {
      let text = await this.stream.take(takeUntilPrompt, timeoutMs, "the prompt after an interrupt");
      this.stream.write(marker + "\n");
      for (;;) {
        const out = await this.stream.take(takeUntilPrompt, timeoutMs, "the prompt after an interrupt");
        if (out.includes("show param name: <cpu0.icount>")) return text;
        text += out;
      }
    });
  }

  close(): void {
    this.stream.close();
  }
}

/** Where the CPU stands after `s`/`c` (`Next at t=...` and the disassembled next instruction). */
export interface NextInstruction {
  readonly ticks: bigint;
  readonly selector: number;
  readonly rip: bigint;
  /** The instruction's bytes, when Bochs could read them. */
  readonly bytes: Uint8Array | undefined;
  readonly text: string;
}

const NEXT_AT = /Next at t=(\d+)/;
/** `(0) [0x000000010000] 0008:0000000000010000 (unk. ctxt): mov rax, 0x... ; 48b8...` */
const NEXT_LINE = /^\(\d+\)(?:\.\[\d+\])? (?:\[0x[0-9a-f]+\]|\?\?\?) ([0-9a-f]{4}):([0-9a-f]{4,16}) \([^)]*\): (.*?)\s*;\s*([0-9a-f]*)\s*$/m;
const NEXT_UNAVAILABLE = /^\(\d+\)(?:\.\[\d+\])? \?\?\? \(physical address not available\)/m;

/** Parses the stop report of `s`/`c`; undefined fields when Bochs could not disassemble. */
export function parseNext(text: string): NextInstruction | { readonly ticks: bigint; readonly unavailable: true } {
  const t = NEXT_AT.exec(text);
  if (t === null) throw new EngineError("protocol", `bochs: no "Next at t=" in ${JSON.stringify(text.slice(0, 120))}`);
  const line = NEXT_LINE.exec(text.slice(t.index));
  if (line === null) {
    if (NEXT_UNAVAILABLE.test(text.slice(t.index))) return { ticks: BigInt(t[1]!), unavailable: true };
    throw new EngineError("protocol", `bochs: unexpected stop report ${JSON.stringify(text.slice(t.index, t.index + 160))}`);
  }
  const hex = line[4]!;
  return {
    ticks: BigInt(t[1]!),
    selector: parseInt(line[1]!, 16),
    rip: BigInt("0x" + line[2]!),
    bytes: hex === "" ? undefined : Uint8Array.from(Buffer.from(hex, "hex")),
    text: line[3]!,
  };
}
