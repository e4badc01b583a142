// Why an emulator engine could not run a case. Every failure is one of these, with a one-line
// message; the runner reports it for that case and goes on with the next one.

export type EngineErrorKind =
  /** The emulator program is missing or exited before it was ready. */
  | "start"
  /** A wall-clock limit passed (the watchdog ended the emulator). */
  | "timeout"
  /** The emulator died while running the case. */
  | "crash"
  /** The emulator's output or a protocol message did not have the expected form. */
  | "protocol"
  /** The state cannot be installed on this emulator (a field it cannot set, memory it cannot hold). */
  | "unsupported-state"
  /** The engine was used wrongly (e.g. step before load, after close). */
  | "usage";

export class EngineError extends Error {
  override name = "EngineError";
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
  ) {
    super(message.replace(/\s*\n\s*/g, " "));
  }
}

/** The message of anything thrown, on one line. */
export function oneLineMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/\s*\n\s*/g, " ");
}
