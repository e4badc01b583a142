// One self-contained HTML file from a model: the page's markup, styles and script (page.html,
// page.css, page.js beside this file) with the model embedded as JSON. Nothing is fetched when the
// page opens: no network, no fonts, no scripts from elsewhere (the page's Content-Security-Policy
// forbids them). What comes from input (names, symbols, disassembly, paths) reaches the page only
// as JSON data, which the script puts into the DOM as text; the JSON is escaped so that no
// `</script>` or comment opener can end its element early.
import { readFileSync } from "node:fs";
import type { DivergenceModel } from "../model/divergence.ts";
import type { TraceModel } from "../model/types.ts";

export type PageData = { readonly kind: "trace"; readonly model: TraceModel } | { readonly kind: "divergence"; readonly model: DivergenceModel };

interface Assets {
  readonly html: string;
  readonly css: string;
  readonly js: string;
}

let assets: Assets | undefined;

function loadAssets(): Assets {
  if (assets === undefined) {
    const read = (name: string) => readFileSync(new URL(name, import.meta.url), "utf8");
    assets = { html: read("./page.html"), css: read("./page.css"), js: read("./page.js") };
    // Our own files: they must not end their elements early either.
    if (/<\/style/i.test(assets.css) || /<\/script/i.test(assets.js)) throw new Error("trace/html: an asset contains a closing tag of its element");
  }
  return assets;
}

/** Text for an HTML element's content or an attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** JSON that is safe inside <script type="application/json">: `<`, `>`, `&` and the two line
 *  separators JavaScript once treated as newlines are written as \u escapes. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** Fills `{{NAME}}` placeholders without the replacement patterns of String.replace. */
function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.split(/(\{\{[A-Z]+\}\})/).map((part) => {
    const m = /^\{\{([A-Z]+)\}\}$/.exec(part);
    if (m === null) return part;
    const v = values[m[1]!];
    if (v === undefined) throw new Error(`trace/html: no value for ${part}`);
    return v;
  }).join("");
}

/** The page: one HTML document with everything it needs inside. */
export function renderPage(data: PageData): string {
  const { html, css, js } = loadAssets();
  const title = data.kind === "trace" ? `${data.model.title} — ringspec trace` : `${data.model.title} — ringspec divergence`;
  return fill(html, { TITLE: escapeHtml(title), STYLE: css, SCRIPT: js, DATA: scriptJson(data) });
}
