// The HTML trace and divergence pages in a real headless Chromium (Debian's, through
// playwright-core): they open from disk with no console error and no request, the timeline shows
// the transitions, a click shows a transition's sequence and frame with the right values, the
// divergence page highlights exactly the differing fields. Screenshots at a narrow and a wide
// viewport go to test-artifacts/browser/ (gitignored).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { launchChromium, openPage, type Browser } from "./chromium.ts";
import { modelOf, vectorState } from "../trace/helpers.ts";
import { syscallLoop } from "../trace/guests.ts";
import { renderPage } from "../../trace/html/render.ts";
import { DIVERGENCE_FORMAT, divergenceModel, parseDivergence } from "../../trace/model/divergence.ts";
import { REGSTATE_LAYOUT } from "../../trace/model/frame.ts";
import { stateToJson } from "../../contract/state.ts";
import { ruleCatalogue } from "../../cli/trace.ts";
import type { TraceModel } from "../../trace/model/types.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const ARTIFACTS = join(ROOT, "test-artifacts/browser");

const pages: Record<string, string> = {};
let roundTrip: TraceModel;
let loop: TraceModel;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const write = (name: string, html: string) => {
    const file = join(ARTIFACTS, `${name}.html`);
    writeFileSync(file, html);
    pages[name] = file;
  };
  roundTrip = modelOf(vectorState("syscall-sysret-roundtrip"), { steps: 6, title: "syscall-sysret-roundtrip" });
  write("roundtrip", renderPage({ kind: "trace", model: roundTrip }));
  write("pf", renderPage({ kind: "trace", model: modelOf(vectorState("pf-user-read-notpresent"), { steps: 2, title: "pf-user-read-notpresent" }) }));
  write("iret", renderPage({ kind: "trace", model: modelOf(vectorState("iretq-ring3-to-ring0-gp"), { steps: 6, title: "iretq-ring3-to-ring0-gp" }) }));
  const g = syscallLoop();
  loop = modelOf(g.state, { steps: 11 * 300, symbols: g.symbols, frameLayout: REGSTATE_LAYOUT, title: "300 SYSCALL round trips" });
  write("loop", renderPage({ kind: "trace", model: loop }));
  write("divergence", renderPage({ kind: "divergence", model: divergenceModel(parseDivergence(divergenceDocument()), ruleCatalogue) }));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

function divergenceDocument() {
  const a = vectorState("syscall-basic");
  const strip = (s: typeof a) => {
    const { memory: _memory, ...rest } = stateToJson(s);
    return rest;
  };
  const b = { ...a, gpr: a.gpr.map((v, i) => (i === 11 ? v | 0x100n : v)), ss: { ...a.ss, dpl: 0 } };
  return {
    format: DIVERGENCE_FORMAT,
    engines: { a: "spec", b: "impl" },
    step: 1,
    events: { a: "retired at 0x200000", b: "retired at 0x200000" },
    states: { a: strip(a), b: strip(b) },
    differences: [
      { field: "regs.r11", a: `0x${a.gpr[11]!.toString(16)}`, b: `0x${(a.gpr[11]! | 0x100n).toString(16)}` },
      { field: "sregs.ss.dpl", a: a.ss.dpl, b: 0 },
      { field: "memory@0x1ff8", a: "0000000000000000", b: "2b00000000000000" },
    ],
    replay: "npx ringspec run case.json --trace --max-steps 1 --engine spec",
    rules: ["PF-ACCESSED", "RF-01", "SYSCALL-03", "SYSCALL-04"],
  };
}

/** A click on the timeline where transition `id` is drawn (its marker's dot). */
async function clickMarker(page: Page, id: number): Promise<void> {
  const box = await page.locator(`svg[data-testid=timeline] [data-testid=marker][data-id='${id}'] circle`).boundingBox();
  if (box === null) throw new Error(`transition ${id} is not drawn`);
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
}

describe("the trace page in Chromium", () => {
  it("opens from disk with no console error and no request", async () => {
    for (const name of ["roundtrip", "pf", "iret", "loop", "divergence"]) {
      const { page, problems } = await openPage(browser, pages[name]!);
      expect(problems, name).toEqual([]);
      await page.close();
    }
  });

  it("the timeline shows every transition, each marked by kind", async () => {
    const { page, problems } = await openPage(browser, pages.roundtrip!);
    await expect(page.locator("[data-testid=transition-count]").innerText()).resolves.toBe("2 transitions");
    const markers = page.locator("svg[data-testid=timeline] [data-testid=marker]");
    await expect(markers.count()).resolves.toBe(2);
    await expect(markers.evaluateAll((m) => m.map((x) => x.getAttribute("data-kind")))).resolves.toEqual(["syscall", "sysret"]);
    await expect(page.locator("svg[data-testid=timeline] text", { hasText: "SYSCALL" }).count()).resolves.toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("clicking a transition on the timeline shows its sequence and frame with the right values", async () => {
    const { page, problems } = await openPage(browser, pages.roundtrip!);
    await clickMarker(page, 1);
    await expect(page.locator("[data-testid=detail]").getAttribute("data-transition")).resolves.toBe("1");
    await expect(page.locator("[data-testid=detail-title]").innerText()).resolves.toBe("SYSRETQ from CPL 0 to CPL 3 at 0x230000: sysretq");
    await clickMarker(page, 0);
    const lines = page.locator("[data-testid=sequence-line]");
    const rules = await lines.evaluateAll((ls) => ls.map((l) => `${l.getAttribute("data-rule")} ${l.getAttribute("data-status")}`));
    expect(rules.slice(0, 3)).toEqual(["SYSCALL-01 passed", "SYSCALL-02 passed", "SYSCALL-03 reported"]);
    await expect(lines.filter({ hasText: "RCX ← 0x200002, the RIP of the next instruction" }).count()).resolves.toBe(1);
    const rcx = page.locator("[data-testid=frame-register][data-name=RCX] td");
    await expect(rcx.allInnerTexts()).resolves.toEqual(["RCX", "0x0", "→", "0x200002", "← the return RIP"]);
    // A rule ID opens its description and SDM source.
    await page.locator("[data-testid=sequence-line][data-rule='SYSCALL-08'] a.rule").click();
    await expect(page.locator("[data-testid=rule-pop]").innerText()).resolves.toContain("SDM Vol. 2B SYSCALL");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("a #PF: the failed check, the error code pushed below RIP, RSP marked", async () => {
    const { page, problems } = await openPage(browser, pages.pf!);
    await page.locator("[data-testid=transition-row][data-id='0']").click();
    await expect(page.locator("[data-testid=sequence-line][data-status=failed]").innerText()).resolves.toContain("raises #PF(0x4)");
    const cell = page.locator("[data-testid=frame-cell][data-name='error code']");
    await expect(cell.getAttribute("data-address")).resolves.toBe("0x1ffd0");
    await expect(cell.getAttribute("data-after")).resolves.toBe("0000_0000_0000_0004");
    await expect(cell.locator("td.mark").innerText()).resolves.toBe("← RSP after");
    await expect(page.locator("[data-testid=frame-cell][data-name=RIP]").getAttribute("data-after")).resolves.toBe("0000_0000_0020_0000");
    // The step list: the transition's step shows every field it changed.
    await page.locator("[data-testid=step-row][data-step='1']").click();
    const changed = await page.locator("[data-testid=step-changes] [data-testid=change] td.f").allInnerTexts();
    expect(changed).toEqual(expect.arrayContaining(["regs.rsp", "regs.rip", "sregs.cs.selector", "sregs.cr2", "memory@0x1ffd0"]));
    expect(problems).toEqual([]);
    await page.close();
  });

  it("a failed IRETQ: the banner names the check, both frames are drawn", async () => {
    const { page } = await openPage(browser, pages.iret!);
    await page.locator("[data-testid=transition-row]").first().click();
    await expect(page.locator("[data-testid=failed]").innerText()).resolves.toBe("IRETQ failed at IRETQ-06: return CS.RPL 0 < CPL 3: IRET never returns to a more privileged level");
    await expect(page.locator("[data-testid=frame]").count()).resolves.toBe(2);
    await page.close();
  });

  it("a long run: round trips grouped, expanded by a click, zoomed by the wheel", async () => {
    const { page, problems } = await openPage(browser, pages.loop!);
    const svg = page.locator("svg[data-testid=timeline]");
    await expect(svg.getAttribute("data-groups")).resolves.toBe("1");
    await expect(page.locator("[data-testid=group]").getAttribute("data-count")).resolves.toBe("300");
    // Grouping off: every transition is on the timeline (SYSCALL, two SWAPGS, SYSRETQ per trip).
    await page.locator("[data-testid=group-toggle]").uncheck();
    await expect(svg.getAttribute("data-visible-transitions")).resolves.toBe(String(loop.transitions.length));
    await expect(svg.locator("[data-testid=marker]").count()).resolves.toBe(1200);
    await page.locator("[data-testid=group-toggle]").check();
    await page.locator("[data-testid=group]").click();
    await expect(svg.getAttribute("data-groups")).resolves.toBe("0");
    const box = (await svg.boundingBox())!;
    const before = Number(await svg.getAttribute("data-visible-transitions"));
    await page.mouse.move(box.x + box.width / 2, box.y + 60);
    await page.mouse.wheel(0, -600);
    // The wheel redraws on the next animation frame: wait for it (polling ends as soon as it has
    // come; expect.poll's default of 1 s is a deadline a busy machine's Chromium can miss).
    await expect.poll(async () => Number(await svg.getAttribute("data-visible-transitions")), { timeout: 30_000 }).toBeLessThan(before);
    await page.locator("[data-testid=fit]").click();
    await expect(svg.getAttribute("data-visible-transitions")).resolves.toBe(String(before));
    // Compressing long runs redraws the same transitions on another axis.
    await page.locator("[data-testid=compress-toggle]").check();
    await expect(svg.getAttribute("data-visible-transitions")).resolves.toBe(String(before));
    // The syscall's kernel entry is named from the symbol map.
    await expect(page.locator("[data-testid=detail-title]").innerText()).resolves.toContain("SYSCALL from CPL 3 to CPL 0");
    await expect(page.locator("[data-testid=detail]").innerText()).resolves.toContain("<entry_SYSCALL_64>");
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe("the divergence page in Chromium", () => {
  it("highlights exactly the differing fields, with the replay command", async () => {
    const { page, problems } = await openPage(browser, pages.divergence!);
    const differing = await page.locator("[data-testid=field-row].differs").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-field")));
    expect(differing).toEqual(["regs.r11", "sregs.ss.dpl", "memory@0x1ff8"]);
    const r11 = divergenceDocument().differences[0]!;
    await expect(page.locator("[data-testid=field-row][data-field='regs.r11'] td").allInnerTexts()).resolves.toEqual(["regs.r11", r11.a, r11.b]);
    await expect(page.locator("[data-testid=field-row]:not(.differs)").count()).resolves.toBeGreaterThan(100);
    await expect(page.locator("[data-testid=replay]").innerText()).resolves.toBe("npx ringspec run case.json --trace --max-steps 1 --engine spec");
    await page.locator("[data-testid=only-differences]").check();
    await expect(page.locator("[data-testid=field-row]:visible").count()).resolves.toBe(3);
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe("screenshots (test-artifacts/browser)", () => {
  for (const [name, width] of [["narrow", 420], ["wide", 1440]] as const) {
    it(`${name}: ${width} px`, async () => {
      for (const which of ["loop", "pf", "divergence"]) {
        const { page, problems } = await openPage(browser, pages[which]!);
        await page.setViewportSize({ width, height: 900 });
        if (which === "pf") await page.locator("[data-testid=transition-row]").first().click();
        const file = join(ARTIFACTS, `${which}-${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        // Nothing wider than the viewport: the page reflows.
        await expect(page.evaluate("document.documentElement.scrollWidth")).resolves.toBeLessThanOrEqual(width);
        expect(problems).toEqual([]);
        await page.close();
      }
    });
  }
});
