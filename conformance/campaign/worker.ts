// The body of a campaign's worker thread: the same case loop as the main thread, its outcomes
// posted to the main thread one by one (conformance/campaign/campaign.ts).
import { parentPort, workerData } from "node:worker_threads";
import { caseLoop, type WorkerData, type WorkerMessage } from "./campaign.ts";

const data = workerData as WorkerData;
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

try {
  const r = await caseLoop(data.plan, data.deadline, new Int32Array(data.shared), (outcome) => post({ type: "outcome", outcome }));
  post({ type: "done", coverage: [...r.coverage], restarts: r.restarts, names: r.names });
} catch (e) {
  post({ type: "failed", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
}
