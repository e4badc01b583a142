// Makes the README's figures of the HTML trace (`npm run figures`; needs Debian's chromium):
//   npx ringspec trace demo --max-steps 6000 --html <tmp>/demo.html
// then, in headless Chromium, screenshots of the privilege timeline, of the first SYSCALL expanded
// (its mode-transfer sequence and the registers that carry the return state), and of the first
// timer interrupt taken in user mode (its frame on the RSP0 stack, named as the kernel's regstate).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main } from "../../cli/main.ts";
import { launchChromium, openPage } from "../../test/browser/chromium.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "ringspec-figures-"));
const page = join(work, "demo.html");
const code = await main(["trace", "demo", "--max-steps", "6000", "--html", page]);
if (code !== 0) throw new Error(`ringspec trace exited ${code}`);

const browser = await launchChromium({ width: 1200, height: 900 });
try {
  const { page: p, problems } = await openPage(browser, page);
  await p.locator("[data-testid=timeline-panel]").screenshot({ path: join(HERE, "timeline.png") });
  const data = /<script type="application\/json" id="ringspec-data">([\s\S]*?)<\/script>/.exec(readFileSync(page, "utf8"))![1]!;
  const transitions = (JSON.parse(data) as { model: { transitions: { id: number; label: string; from: { cpl: number } }[] } }).model.transitions;
  const row = async (label: string) => {
    const id = transitions.find((t) => t.label === label && t.from.cpl === 3)?.id;
    if (id === undefined) throw new Error(`no ${label} from user mode in the trace`);
    return id;
  };
  for (const [label, file] of [["SYSCALL", "syscall.png"], ["IRQ 0x20", "interrupt-frame.png"]] as const) {
    const id = await row(label);
    await p.locator("[data-testid=transition-list]").evaluate((el) => (el.scrollTop = 0));
    await selectTransition(p, id);
    await p.locator("[data-testid=detail]").screenshot({ path: join(HERE, file) });
  }
  if (problems.length > 0) throw new Error(`the page reported problems: ${problems.join("; ")}`);
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(`wrote ${join(HERE, "timeline.png")}, ${join(HERE, "syscall.png")}, ${join(HERE, "interrupt-frame.png")}`);

/** Selects transition `id` the way a reader does: its row in the transition list. */
async function selectTransition(p: import("playwright-core").Page, id: number): Promise<void> {
  const list = p.locator("[data-testid=transition-list]");
  for (let i = 0; i < 200; i++) {
    const row = list.locator(`[data-testid=transition-row][data-id='${id}']`);
    if ((await row.count()) > 0) {
      await row.click();
      return;
    }
    await list.evaluate((el) => (el.scrollTop += el.clientHeight * 0.8));
  }
  throw new Error(`transition ${id} not in the list`);
}
