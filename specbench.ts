// Spec-only benchmark: steps per CPU second of spec/ on each bench program (median of N runs).
import { createEngine } from "./engines/registry.ts";
import { runEngine } from "./engines/runner.ts";
import { PROGRAMS } from "./bench/programs.ts";
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const out: Record<string, number> = {};
for (const make of PROGRAMS) {
  const p = make();
  const e = createEngine("spec");
  e.load(p.state, "intel");
  let steps = 1000;
  for (;;) { const t0 = cpu(); runEngine(e, { maxSteps: steps, timeoutMs: 3600000 }); const dt = cpu() - t0; if (dt > 0.1) { steps = Math.round(steps / dt * 0.3); break; } steps *= 4; }
  const xs: number[] = [];
  for (let k = 0; k < 5; k++) { const t0 = cpu(); const r = runEngine(e, { maxSteps: steps, timeoutMs: 3600000 }); xs.push(r.stop.steps / (cpu() - t0)); }
  xs.sort((a, b) => a - b);
  out[p.name] = Math.round(xs[2]!);
}
console.log(JSON.stringify(out));
