// A small QMP (QEMU Machine Protocol) client over a unix socket: JSON lines, the greeting,
// capabilities negotiation, commands with ids, events kept aside. Every message is validated.
import { z } from "zod";
import { ByteStream, connectWithRetry } from "../host/stream.ts";
import { EngineError } from "../host/errors.ts";

const Greeting = z.object({
  QMP: z.object({
    version: z.object({
      qemu: z.object({ major: z.number().int(), minor: z.number().int(), micro: z.number().int() }),
      package: z.string(),
    }),
    capabilities: z.array(z.string()),
  }),
});

const Message = z.union([
  z.object({ return: z.unknown(), id: z.union([z.number(), z.string()]).optional() }),
  z.object({ error: z.object({ class: z.string(), desc: z.string() }), id: z.union([z.number(), z.string()]).optional() }),
  z.object({ event: z.string(), data: z.unknown().optional(), timestamp: z.unknown().optional() }),
]);
export type QmpEvent = { readonly event: string; readonly data: unknown };

export const StatusInfo = z.object({ status: z.string(), running: z.boolean() });
export const MigrationInfo = z.object({ status: z.string().optional(), "error-desc": z.string().optional() });

function takeLine(bytes: Buffer): { value: string; used: number } | undefined {
  const nl = bytes.indexOf(0x0a);
  if (nl === -1) {
    if (bytes.length > 16 << 20) throw new EngineError("protocol", "QMP: a message longer than 16 MiB");
    return undefined;
  }
  return { value: bytes.subarray(0, nl).toString("utf8"), used: nl + 1 };
}

function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new EngineError("protocol", `QMP: not JSON: ${line.slice(0, 80)}`);
  }
}

export class QmpClient {
  readonly events: QmpEvent[] = [];
  private nextId = 1;

  private constructor(
    private readonly stream: ByteStream,
    readonly version: string,
    private readonly timeoutMs: number,
  ) {}

  static async connect(path: string, options: { timeoutMs: number; stillStarting?: () => boolean }): Promise<QmpClient> {
    const socket = await connectWithRetry({ path }, options.timeoutMs, "QMP", options.stillStarting);
    const stream = new ByteStream(socket, "QMP");
    const greeting = Greeting.safeParse(parseJsonLine(await stream.take(takeLine, options.timeoutMs, "the QMP greeting")));
    if (!greeting.success) throw new EngineError("protocol", `QMP: unexpected greeting (${greeting.error.issues[0]?.message ?? "invalid"})`);
    const v = greeting.data.QMP.version.qemu;
    const client = new QmpClient(stream, `${v.major}.${v.minor}.${v.micro}`, options.timeoutMs);
    await client.execute("qmp_capabilities");
    return client;
  }

  /** Runs a command; returns its `return` value (unvalidated: callers parse it with a schema). */
  async execute(command: string, args?: Record<string, unknown>, timeoutMs = this.timeoutMs): Promise<unknown> {
    const id = this.nextId++;
    this.stream.write(JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }) + "\n");
    for (;;) {
      const parsed = Message.safeParse(parseJsonLine(await this.stream.take(takeLine, timeoutMs, `the reply to ${command}`)));
      if (!parsed.success) throw new EngineError("protocol", `QMP: unexpected message in reply to ${command}`);
      const m = parsed.data;
      if ("event" in m) {
        if (this.events.length < 1000) this.events.push({ event: m.event, data: m.data });
        continue;
      }
      if (m.id !== id) continue;
      if ("error" in m) throw new EngineError("protocol", `QMP ${command}: ${m.error.desc}`);
      return m.return;
    }
  }

  /** A command whose reply must match `schema`. */
  async query<T>(command: string, schema: z.ZodType<T>, args?: Record<string, unknown>): Promise<T> {
    const value = await this.execute(command, args);
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new EngineError("protocol", `QMP ${command}: unexpected reply (${parsed.error.issues[0]?.message ?? "invalid"})`);
    return parsed.data;
  }

  /** A human-monitor command; returns its text output. */
  async hmp(commandLine: string): Promise<string> {
    return this.query("human-monitor-command", z.string(), { "command-line": commandLine });
  }

  close(): void {
    this.stream.close();
  }
}
