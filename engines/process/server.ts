// The reference server of the engine protocol (protocol.ts): any in-process Engine behind JSON
// lines on a pair of streams (`ringspec serve --engine impl|spec` on stdin/stdout). Requests are
// answered one at a time, in order. A request that does not parse or validate gets an error answer
// naming the field (with the request's id when it has one); the server goes on. It says
// `step_state`: a `step` with `{"state": true}` answers the event, the touched ranges and the state
// with those pages in one line; and `steps_state`: a `steps` with `{"n": N, "state": true}` answers
// that for each of up to N steps.
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { RUN_ENDING_EVENTS, type Engine, type EngineCapabilities } from "../../contract/engine.ts";
import { PROFILE_NAMES } from "../../contract/profile.ts";
import type { ArchState } from "../../contract/state.ts";
import {
  PROTOCOL_VERSION, RequestJson, capabilitiesToJson, eventToJson, firstIssue, rangeFromJson, rangeToJson, stateFromProtocol,
  stateToProtocol, stopToJson, type Request,
} from "./protocol.ts";

/** A line longer than this is refused (it could only be a runaway client). */
const MAX_LINE = 256 << 20;

class RequestError extends Error {}

/** Only the pages the ranges cover (whole pages; the client reads the bytes it asked for). */
function withMemoryRanges(s: ArchState, ranges: readonly { start: bigint; end: bigint }[]): ArchState {
  const memory = new Map<number, Uint8Array>();
  for (const r of ranges) {
    if (r.end <= r.start) continue;
    for (let n = Number(r.start >> 12n); n <= Number((r.end - 1n) >> 12n); n++) {
      const page = s.memory.get(n);
      if (page !== undefined) memory.set(n, page);
      if (memory.size > 1 << 20) throw new RequestError("params.memory: more than 4 GiB asked for");
    }
  }
  return { ...s, memory };
}

/** One step, then what `touched`, then `state` with the pages touched, would answer next. The
 *  ranges are the engine's own (merged, in order): it hands out only the pages they reach. */
function stepWithState(engine: Engine) {
  const event = eventToJson(engine.step());
  const touched = engine.touched();
  return { event, touched: touched.map(rangeToJson), state: stateToProtocol(withMemoryRanges(engine.state(touched), touched)) };
}

/** What one connection remembers between requests: a step's failure inside a batch, kept for the
 *  next step request so the steps answered before it are not lost with it. */
interface Session {
  failedStep?: { readonly error: unknown };
}

/** The steps of a batch up to the first that fails; a failure after the first is kept in
 *  `session` and thrown at the next `step` or `steps` (the first fails the request itself). */
function batch<T>(session: Session, n: number, step: () => { readonly value: T; readonly last: boolean }): T[] {
  const taken: T[] = [];
  for (let i = 0; i < n; i++) {
    let next: { readonly value: T; readonly last: boolean };
    try {
      next = step();
    } catch (error) {
      if (taken.length === 0) throw error;
      session.failedStep = { error };
      break;
    }
    taken.push(next.value);
    if (next.last) break;
  }
  return taken;
}

/** The most steps one `steps` with `{"state": true}` answers (each carries a state). */
const MAX_STEPS_WITH_STATE = 64;

function answer(engine: Engine, capabilities: EngineCapabilities, request: Request, session: Session): unknown {
  if (request.method === "load") session.failedStep = undefined;
  if ((request.method === "step" || request.method === "steps") && session.failedStep !== undefined) {
    const { error } = session.failedStep;
    session.failedStep = undefined;
    throw error;
  }
  switch (request.method) {
    case "hello":
      if (request.params.protocol !== PROTOCOL_VERSION) throw new RequestError(`params.protocol: this server speaks ${PROTOCOL_VERSION}, not ${JSON.stringify(request.params.protocol)}`);
      return capabilitiesToJson(capabilities, true);
    case "load": {
      let state: ArchState;
      try {
        state = stateFromProtocol(request.params.state);
      } catch (e) {
        throw new RequestError(`params.${(e as Error).message}`);
      }
      if (!capabilities.profiles.includes(request.params.profile)) throw new RequestError(`params.profile: ${request.params.profile} is not one of ${capabilities.profiles.join(", ")}`);
      engine.load(state, request.params.profile);
      return {};
    }
    case "step":
      return request.params?.state === true ? stepWithState(engine) : { event: eventToJson(engine.step()) };
    case "steps": {
      if (request.params.state === true) {
        // Every state is held until the answer is written: the batch is bounded.
        if (request.params.n > MAX_STEPS_WITH_STATE) throw new RequestError(`params.n: at most ${MAX_STEPS_WITH_STATE} steps with state: true, not ${request.params.n}`);
        // Each step as `step` with `{"state": true}` answers it. A lockstep steps a halted CPU once
        // more (its idle step shows that the engine does not step either): that step is the last.
        return {
          steps: batch(session, request.params.n, () => {
            const idle = engine.run(0).reason !== "limit";
            const step = stepWithState(engine);
            return { value: step, last: idle || RUN_ENDING_EVENTS.has(step.event.kind) };
          }),
        };
      }
      return {
        events: batch(session, request.params.n, () => {
          const event = engine.step();
          return { value: eventToJson(event), last: RUN_ENDING_EVENTS.has(event.kind) || engine.run(0).reason !== "limit" };
        }),
      };
    }
    case "run":
      return { stop: stopToJson(engine.run(request.params.max_steps)) };
    case "state": {
      const state = engine.state();
      const ranges = request.params?.memory;
      return { state: stateToProtocol(ranges === undefined ? state : withMemoryRanges(state, ranges.map(rangeFromJson))) };
    }
    case "raise":
      engine.raise("irq" in request.params ? { irq: request.params.irq } : { nmi: true });
      return {};
    case "touched":
      return { ranges: engine.touched().map(rangeToJson) };
  }
}

/** The id of a request that did not validate, if it has a usable one. */
function idOf(value: unknown): number | null {
  const id = typeof value === "object" && value !== null ? (value as { id?: unknown }).id : undefined;
  return typeof id === "number" && Number.isSafeInteger(id) && id >= 0 ? id : null;
}

/** Serves `engine` until `input` ends. Resolves when the input is closed. */
export async function serveEngine(engine: Engine, capabilities: EngineCapabilities, input: Readable, output: Writable): Promise<void> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  const write = (message: unknown) =>
    new Promise<void>((resolve) => {
      if (!output.write(JSON.stringify(message) + "\n")) output.once("drain", resolve);
      else resolve();
    });
  let loaded = false;
  const session: Session = {};
  for await (const line of lines) {
    if (line.trim() === "") continue;
    let value: unknown;
    try {
      if (line.length > MAX_LINE) throw new RequestError(`request longer than ${MAX_LINE} bytes`);
      try {
        value = JSON.parse(line);
      } catch (e) {
        throw new RequestError(`not valid JSON (${(e as Error).message})`);
      }
      const parsed = RequestJson.safeParse(value);
      if (!parsed.success) throw new RequestError(firstIssue(parsed.error));
      const request = parsed.data;
      if (request.method !== "hello" && request.method !== "load" && !loaded) throw new RequestError(`${request.method}: load a state first`);
      const result = answer(engine, capabilities, request, session);
      if (request.method === "load") loaded = true;
      await write({ id: request.id, result });
    } catch (e) {
      const message = e instanceof RequestError ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
      await write({ id: idOf(value) ?? 0, error: { message: message.replace(/\s*\n\s*/g, " ") } });
    }
  }
}

/** The capabilities of an in-process engine served as is. */
export function servedCapabilities(name: string, rules: boolean): EngineCapabilities {
  return { name, profiles: PROFILE_NAMES, singleStep: true, raise: true, touched: true, unobservable: [], rules };
}
