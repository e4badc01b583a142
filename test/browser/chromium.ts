// Debian's Chromium driven by playwright-core: never a downloaded browser, no sandbox (root in CI),
// no background networking, a fresh profile per launch. Shared by the browser tests and the README
// figures (docs/figures/make-figures.ts).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** RINGSPEC_CHROMIUM: another Chromium program (it must exist). */
export const CHROMIUM = ((): string => {
  const given = process.env.RINGSPEC_CHROMIUM;
  if (given === undefined || given === "") return "/usr/bin/chromium";
  if (!existsSync(given)) throw new Error(`RINGSPEC_CHROMIUM: expected the path of a Chromium program, got ${JSON.stringify(given)} (no such file)`);
  return given;
})();

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-default-apps",
  "--disable-extensions",
  "--metrics-recording-only",
  "--mute-audio",
];

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** A headless Chromium with a fresh user-data-dir (removed on close). */
export async function launchChromium(viewport = { width: 1280, height: 900 }): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM}: not installed (apt-get install -y chromium)`);
  const profile = mkdtempSync(join(tmpdir(), "ringspec-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    deviceScaleFactor: 1,
    offline: true,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Watched {
  readonly page: Page;
  /** Console errors, page errors and every request to anything but the page's own file. */
  readonly problems: string[];
}

/** Opens `file` from disk in a new page and records what goes wrong. */
export async function openPage(browser: Browser, file: string): Promise<Watched> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  const url = "file://" + file;
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    if (r.url() !== url) problems.push(`request: ${r.url()}`);
  });
  await page.goto(url);
  await page.waitForSelector("html[data-ready=true]", { timeout: 30_000 });
  return { page, problems };
}
