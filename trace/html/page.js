// ringspec trace page: draws the trace model (trace/model/types.ts) or a divergence
// (trace/model/divergence.ts) embedded in the page as JSON. Everything from the data goes into the
// DOM as text (textContent, setAttribute), never as markup.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const payload = JSON.parse(document.getElementById("ringspec-data").textContent);
  const app = document.getElementById("app");

  // ---- DOM helpers -----------------------------------------------------------------------------

  function set(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    return el;
  }
  function h(tag, attrs, ...children) {
    const el = set(document.createElement(tag), attrs);
    for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
    return el;
  }
  function s(tag, attrs, ...children) {
    const el = set(document.createElementNS(SVG, tag), attrs);
    for (const c of children.flat(Infinity)) if (c) el.append(c);
    return el;
  }

  const KIND_COLOR = {
    syscall: "#2f8a4c", sysret: "#2f8a4c", sysenter: "#2f8a4c", sysexit: "#2f8a4c",
    int: "#b5478f", exception: "#c8372d", irq: "#7a5cc7", nmi: "#a1237a",
    iret: "#1f8a8a", "far-ret": "#6b7785", "far-jump": "#6b7785", "far-call": "#6b7785",
    swapgs: "#8c6d1f", "triple-fault": "#000000",
  };
  const KIND_NAME = {
    syscall: "SYSCALL", sysret: "SYSRET", sysenter: "SYSENTER", sysexit: "SYSEXIT", int: "INT n", exception: "exception",
    irq: "external interrupt", nmi: "NMI", iret: "IRET", "far-ret": "far RET", "far-jump": "far JMP", "far-call": "far CALL",
    swapgs: "SWAPGS", "triple-fault": "triple fault",
  };
  const STACK_COLOR = { user: "#dbe8fa", RSP0: "#fbe6d0", RSP1: "#efe7c8", RSP2: "#efe7c8", kernel: "#e4e7ea" };
  const IST_COLORS = ["#e8dcf7", "#f5d9ec", "#d9f0ee", "#f3e6d3", "#dcecd9", "#ecdede", "#e0e4f4"];
  function stackColor(name) {
    if (STACK_COLOR[name]) return STACK_COLOR[name];
    const m = /^IST([1-7])$/.exec(name);
    return m ? IST_COLORS[Number(m[1]) - 1] : "#e4e7ea";
  }

  let rulePop = null;
  function closePop() {
    if (rulePop) rulePop.remove();
    rulePop = null;
  }
  document.addEventListener("click", (e) => {
    if (rulePop && !rulePop.contains(e.target) && !(e.target.closest && e.target.closest("a.rule"))) closePop();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closePop();
  });

  /** A rule ID linked to its description and SDM source (a popover, and the glossary below). */
  function ruleChip(id, rules) {
    const info = rules[id];
    const a = h("a", { class: "rule", href: "#rule-" + id, "data-rule": id, title: info ? info.description + " (" + info.source + ")" : id, text: id });
    a.addEventListener("click", (e) => {
      e.preventDefault();
      closePop();
      const r = a.getBoundingClientRect();
      rulePop = h("div", { class: "rule-pop", role: "dialog", "data-testid": "rule-pop" },
        h("div", null, h("b", { text: id }), " ", info ? info.description : "(not in the rule catalogue)"),
        info ? h("div", { class: "src", text: info.source }) : null,
        h("div", { class: "src" }, h("a", { href: "#rule-" + id, text: "all rules ↓", onclick: () => { closePop(); flash(id); } })));
      document.body.append(rulePop);
      const w = rulePop.offsetWidth;
      rulePop.style.left = Math.max(8, Math.min(window.innerWidth - w - 8, r.left)) + "px";
      rulePop.style.top = Math.min(window.innerHeight - rulePop.offsetHeight - 8, r.bottom + 6) + "px";
    });
    return a;
  }
  function flash(id) {
    const dt = document.getElementById("rule-" + id);
    if (!dt) return;
    dt.classList.add("flash");
    setTimeout(() => dt.classList.remove("flash"), 1600);
  }

  /** A fixed-row-height virtual list: only the rows in view are in the DOM. */
  function virtualList(container, count, rowHeight, renderRow) {
    const spacer = h("div", { class: "spacer" });
    spacer.style.height = count * rowHeight + "px";
    container.append(spacer);
    let drawn = new Map();
    function draw() {
      const top = container.scrollTop;
      const first = Math.max(0, Math.floor(top / rowHeight) - 10);
      const last = Math.min(count - 1, Math.ceil((top + container.clientHeight) / rowHeight) + 10);
      const next = new Map();
      for (let i = first; i <= last; i++) {
        let row = drawn.get(i);
        if (!row) {
          row = renderRow(i);
          row.style.top = i * rowHeight + "px";
          spacer.append(row);
        }
        next.set(i, row);
      }
      for (const [i, row] of drawn) if (!next.has(i)) row.remove();
      drawn = next;
    }
    container.addEventListener("scroll", draw);
    return {
      draw,
      redraw() {
        for (const row of drawn.values()) row.remove();
        drawn = new Map();
        draw();
      },
      scrollTo(i) {
        const y = i * rowHeight;
        if (y < container.scrollTop || y > container.scrollTop + container.clientHeight - rowHeight) container.scrollTop = Math.max(0, y - container.clientHeight / 3);
        draw();
      },
    };
  }

  function modeName(mode) {
    return mode === "64" ? "64-bit" : mode === "compat32" ? "compat 32" : "compat 16";
  }

  // =============================================================================================
  // The trace
  // =============================================================================================

  function renderTrace(m) {
    const segs = m.segments;
    const transitions = m.transitions;
    const T = segs.length === 0 ? 1 : segs[segs.length - 1].to + 1;
    const state = {
      selected: null, step: null, compressed: false, grouped: m.groups.length > 0, expanded: new Set(), view: null, showMinor: true,
    };

    // -- header
    const stop = m.stop;
    app.append(h("header", { class: "top" },
      h("h1", { text: m.title }),
      h("div", { class: "meta" },
        h("span", null, "engine ", h("b", { text: m.source.engine }), m.source.rules ? " (reports rules)" : " (reports no rules: sequences are read from the states)"),
        h("span", null, "profile ", h("b", { text: m.source.profile })),
        h("span", null, "stop ", h("b", { text: stop.reason }), " after ", h("b", { text: String(stop.steps) }), " steps", stop.detail ? ": " + stop.detail : ""),
        h("span", { "data-testid": "transition-count" }, h("b", { text: String(transitions.length) }), " transitions"),
        m.frameLayout ? h("span", null, "frames named as ", h("b", { text: m.frameLayout })) : null),
      h("div", { class: "command" }, h("span", { class: "path", text: "made by" }), h("code", { text: m.source.command })),
      m.omittedSteps > 0 ? h("div", { class: "path", text: m.omittedSteps + " later steps are not listed (over the record limit); the timeline and transitions cover the whole run" }) : null,
      m.omittedDetails > 0 ? h("div", { class: "path", text: m.omittedDetails + " later transitions have no sequence or frame (over the detail limit)" }) : null));

    const main = h("main");
    app.append(main);

    // -- timeline
    const lanes = laneList(segs);
    const panel = h("section", { class: "panel", "data-testid": "timeline-panel" });
    const summary = h("span", { class: "summary" });
    const groupBox = h("input", { type: "checkbox", "data-testid": "group-toggle" });
    groupBox.checked = state.grouped;
    groupBox.disabled = m.groups.length === 0;
    const compressBox = h("input", { type: "checkbox", "data-testid": "compress-toggle" });
    panel.append(h("div", { class: "toolbar" },
      h("h2", { text: "Privilege timeline", style: "margin:0" }),
      h("button", { type: "button", title: "zoom in (or the mouse wheel)", text: "+", onclick: () => zoom(0.5) }),
      h("button", { type: "button", title: "zoom out", text: "−", onclick: () => zoom(2) }),
      h("button", { type: "button", title: "the whole run", text: "fit", "data-testid": "fit", onclick: () => { state.view = null; draw(); } }),
      h("button", { type: "button", title: "previous transition (k)", text: "◀", onclick: () => selectRelative(-1) }),
      h("button", { type: "button", title: "next transition (j)", text: "▶", onclick: () => selectRelative(1) }),
      h("label", null, groupBox, "group repeated round trips" + (m.groups.length ? " (" + m.groups.length + ")" : "")),
      h("label", null, compressBox, "compress long runs"),
      h("span", { class: "spacer" }), summary));
    groupBox.addEventListener("change", () => { state.grouped = groupBox.checked; draw(); });
    compressBox.addEventListener("change", () => {
      // The drawn axis changes: the view keeps the same steps.
      const view = state.view ? [toT(state.view[0]), toT(state.view[1])] : null;
      state.compressed = compressBox.checked;
      buildScale();
      state.view = view ? [toU(view[0]), toU(view[1])] : null;
      draw();
    });
    const overview = s("svg", { class: "overview", height: 26, "aria-label": "the whole run" });
    const svg = s("svg", { class: "timeline", "data-testid": "timeline", role: "img", "aria-label": "privilege timeline" });
    const wrap = h("div", { class: "timeline-wrap" }, overview, svg);
    panel.append(wrap);
    panel.append(legend());
    main.append(panel);

    // -- transitions list + detail
    const listBox = h("div", { class: "list", "data-testid": "transition-list" });
    const detail = h("section", { class: "panel", "data-testid": "detail" }, h("p", { class: "empty", text: "Click a transition on the timeline or in the list." }));
    const minorBox = h("input", { type: "checkbox", "data-testid": "minor-toggle" });
    const listPanel = h("section", { class: "panel" },
      h("div", { class: "toolbar" }, h("h2", { text: "Transitions", style: "margin:0" }), h("span", { class: "spacer" }),
        transitions.some((t) => t.minor) ? h("label", null, minorBox, "SWAPGS") : null),
      listBox);
    main.append(h("div", { class: "split" }, listPanel, detail));

    // -- steps
    const stepsBox = h("div", { class: "steps", "data-testid": "steps" });
    const changesBox = h("div", { class: "changes", "data-testid": "step-changes" });
    main.append(h("section", { class: "panel" }, h("h2", { text: "Steps" }),
      h("p", { class: "path", text: "Every step: address, instruction (iced-x86, AT&T syntax), what it did. Click one for the fields it changed." }),
      stepsBox, changesBox));

    // -- rules
    const ruleIds = Object.keys(m.rules).sort();
    main.append(h("section", { class: "panel", "data-testid": "rules" }, h("h2", { text: "Rules named on this page" }),
      h("dl", { class: "rules" }, ruleIds.map((id) => [
        h("dt", { id: "rule-" + id, text: id }),
        h("dd", null, m.rules[id].description, " ", h("span", { class: "src", text: "— " + m.rules[id].source })),
      ]))));

    // ---- scale: t (boundary axis) <-> u (drawn axis; compressed or linear) -----------------
    let segU = [];
    let totalU = T;
    function weight(len) {
      return len <= 8 ? len : 8 + 4 * Math.log2(len / 8);
    }
    function buildScale() {
      segU = [];
      let u = 0;
      for (const sg of segs) {
        segU.push(u);
        u += state.compressed ? weight(sg.to - sg.from + 1) : sg.to - sg.from + 1;
      }
      totalU = Math.max(u, 1);
    }
    function segIndexAtT(t) {
      let lo = 0, hi = segs.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (segs[mid].from <= t) lo = mid; else hi = mid - 1;
      }
      return lo;
    }
    function toU(t) {
      if (!state.compressed) return t;
      if (segs.length === 0) return t;
      if (t >= T) return totalU;
      const i = segIndexAtT(Math.floor(t));
      const sg = segs[i];
      const len = sg.to - sg.from + 1;
      return segU[i] + ((t - sg.from) / len) * weight(len);
    }
    function toT(u) {
      if (!state.compressed) return u;
      let lo = 0, hi = segs.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (segU[mid] <= u) lo = mid; else hi = mid - 1;
      }
      const sg = segs[lo];
      const len = sg.to - sg.from + 1;
      return sg.from + ((u - segU[lo]) / weight(len)) * len;
    }
    buildScale();

    // ---- drawing ------------------------------------------------------------------------------
    const LEFT = 118, RIGHT = 10, TOP = 34, LANE = 24, GAP = 5, STRIP = 14;
    function laneY(cpl, mode) {
      const i = lanes.findIndex((l) => l.cpl === cpl && (l.compat ? mode !== "64" : mode === "64"));
      return TOP + Math.max(0, i) * (LANE + GAP);
    }
    function transitionY(ep) {
      return laneY(ep.cpl, ep.mode) + LANE / 2;
    }

    function visibleTransitions(t0, t1) {
      let lo = 0, hi = transitions.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (transitions[mid].step < t0) lo = mid + 1; else hi = mid;
      }
      const out = [];
      for (let i = lo; i < transitions.length && transitions[i].step <= t1; i++) out.push(transitions[i]);
      return out;
    }
    function hiddenByGroup(t) {
      if (!state.grouped) return null;
      for (const g of m.groups) if (!state.expanded.has(g.first) && t.step > g.from && t.step <= g.to) return g;
      return null;
    }

    function draw() {
      const W = Math.max(320, wrap.clientWidth);
      const plotW = W - LEFT - RIGHT;
      const [v0, v1] = state.view || [0, totalU];
      const px = (u) => LEFT + ((u - v0) / (v1 - v0)) * plotW;
      const t0 = Math.max(0, Math.floor(toT(v0)));
      const t1 = Math.min(T, Math.ceil(toT(v1)));
      const lanesBottom = TOP + lanes.length * (LANE + GAP);
      const yIf = lanesBottom + 4, yStack = yIf + STRIP + 4, yGs = yStack + STRIP + 6, yAxis = yGs + STRIP + 6;
      const H = yAxis + 18;
      svg.replaceChildren();
      svg.setAttribute("viewBox", "0 0 " + W + " " + H);
      svg.setAttribute("height", H);
      const clip = s("clipPath", { id: "plot-clip" }, s("rect", { x: LEFT, y: 0, width: plotW, height: H }));
      svg.append(s("defs", null, clip));
      const plot = s("g", { "clip-path": "url(#plot-clip)" });

      // lane backgrounds and labels
      for (const l of lanes) {
        const y = laneY(l.cpl, l.compat ? "compat32" : "64");
        svg.append(s("rect", { class: "lane-bg", x: LEFT, y, width: plotW, height: LANE }));
        svg.append(s("text", { class: "lane-label", x: 6, y: y + 11, text: l.cpl === 3 ? "user · CPL 3" : l.cpl === 0 ? "kernel · CPL 0" : "CPL " + l.cpl }));
        svg.append(s("text", { class: "lane-label sub", x: 6, y: y + 21, text: l.compat ? "compatibility mode" : "64-bit mode" }));
      }
      for (const [y, label] of [[yIf, "IF"], [yStack, "stack"], [yGs, "GS.base"]]) svg.append(s("text", { class: "lane-label", x: 6, y: y + 11, text: label }));

      // segments, merged per lane where they are finer than a pixel
      const runs = new Map();
      function extend(key, x0, x1, make) {
        const r = runs.get(key);
        if (r && x0 - r.x1 < 0.75) { r.x1 = Math.max(r.x1, x1); return; }
        if (r) plot.append(make(r));
        runs.set(key, { x0, x1 });
      }
      function flush(key, make) {
        const r = runs.get(key);
        if (r) plot.append(make(r));
        runs.delete(key);
      }
      const makers = {};
      let i = segs.length ? segIndexAtT(t0) : 0;
      for (; i < segs.length && segs[i].from <= t1; i++) {
        const sg = segs[i];
        const x0 = px(toU(sg.from)), x1 = px(toU(sg.to + 1));
        const laneKey = "lane:" + sg.cpl + ":" + (sg.mode === "64" ? "64" : "c");
        const cls = sg.cpl === 3 ? (sg.mode === "64" ? "seg-user" : "seg-compat") : sg.cpl === 0 ? (sg.mode === "64" ? "seg-kernel" : "seg-compat") : "seg-ring12";
        const ly = laneY(sg.cpl, sg.mode);
        makers[laneKey] = (r) => s("rect", { class: cls, x: r.x0, y: ly + 3, width: Math.max(1, r.x1 - r.x0), height: LANE - 6, rx: 2 });
        extend(laneKey, x0, x1, makers[laneKey]);
        if (sg.if) {
          makers.if = (r) => s("rect", { class: "strip-if", x: r.x0, y: yIf, width: Math.max(1, r.x1 - r.x0), height: STRIP - 4 });
          extend("if", x0, x1, makers.if);
        }
        const stackKey = "stack:" + sg.stack;
        makers[stackKey] = (r) => {
          const g = s("g", null, s("rect", { x: r.x0, y: yStack, width: Math.max(1, r.x1 - r.x0), height: STRIP, fill: stackColor(sg.stack) }));
          if (r.x1 - r.x0 > 8 * sg.stack.length + 8) g.append(s("text", { class: "stack-label", x: Math.max(r.x0, LEFT) + 3, y: yStack + 11, text: sg.stack }));
          return g;
        };
        extend(stackKey, x0, x1, makers[stackKey]);
        const gsKey = "gs:" + sg.gs + (sg.gs === "kernel" && sg.cpl === 3 ? ":bad" : "");
        const gsCls = sg.gs === "kernel" && sg.cpl === 3 ? "strip-gs-bad" : sg.gs === "kernel" || sg.gs === "swapped" ? "strip-gs-kernel" : "strip-gs-user";
        makers[gsKey] = (r) => s("rect", { class: gsCls, x: r.x0, y: yGs, width: Math.max(1, r.x1 - r.x0), height: STRIP - 2 });
        extend(gsKey, x0, x1, makers[gsKey]);
      }
      for (const key of [...runs.keys()]) flush(key, makers[key]);

      // round-trip groups
      const groupsShown = [];
      if (state.grouped) {
        for (const g of m.groups) {
          if (state.expanded.has(g.first) || g.to < t0 || g.from > t1) continue;
          const x0 = px(toU(g.from + 1)), x1 = px(toU(g.to));
          plot.append(s("rect", { class: "group-block", x: x0, y: 3, width: Math.max(3, x1 - x0), height: lanesBottom - 3, "data-testid": "group", "data-count": g.count, "data-first": g.first }));
          plot.append(s("text", { class: "group-label", x: Math.max(x0, LEFT) + 2, y: 16, text: g.label }));
          groupsShown.push(g);
        }
      }

      // transitions
      const visible = visibleTransitions(t0, t1).filter((t) => !hiddenByGroup(t) && (state.showMinor || !t.minor));
      const many = visible.length > 1500;
      let lastLabelX = -1e9, alt = 0;
      const paths = {};
      for (const t of visible) {
        const x = px(toU(t.step));
        const color = KIND_COLOR[t.kind] || "#333";
        if (t.minor) {
          if (many) continue;
          const g = s("g", { class: "marker minor", "data-testid": "marker", "data-id": t.id, "data-kind": t.kind });
          g.append(s("line", { class: "main", x1: x, x2: x, y1: yGs - 2, y2: yGs + STRIP, stroke: color }));
          plot.append(g);
          continue;
        }
        const y1 = transitionY(t.from), y2 = transitionY(t.to);
        const ya = Math.min(y1, y2) - (y1 === y2 ? 9 : 0), yb = Math.max(y1, y2) + (y1 === y2 ? 9 : 0);
        if (many) {
          paths[color] = (paths[color] || "") + "M" + x.toFixed(1) + " " + ya + "V" + yb;
          continue;
        }
        const g = s("g", { class: "marker" + (state.selected === t.id ? " selected" : ""), "data-testid": "marker", "data-id": t.id, "data-kind": t.kind });
        g.append(s("line", { class: "main", x1: x, x2: x, y1: ya, y2: yb, stroke: color }));
        g.append(s("circle", { cx: x, cy: y2, r: 3.2, fill: color }));
        const nearGroup = groupsShown.some((g) => {
          const gx = Math.max(px(toU(g.from + 1)), LEFT);
          return x > gx - 60 && x < Math.max(px(toU(g.to)), gx + 7 * g.label.length) + 4;
        });
        if (x - lastLabelX > 46 && !nearGroup) {
          alt = x - lastLabelX > 110 ? 0 : 1 - alt;
          g.append(s("text", { x: x + 3, y: alt ? 28 : 16, fill: color, text: t.label }));
          lastLabelX = x;
        }
        g.append(s("title", { text: t.title }));
        plot.append(g);
      }
      for (const [color, d] of Object.entries(paths)) plot.append(s("path", { d, stroke: color, "stroke-width": 1, fill: "none", "data-testid": "marker-path" }));
      if (state.selected !== null) {
        const t = transitions[state.selected];
        if (t && t.step >= t0 && t.step <= t1) {
          const x = px(toU(t.step));
          plot.append(s("line", { class: "selected-line", x1: x, x2: x, y1: 2, y2: yGs + STRIP }));
        }
      }
      svg.append(plot);
      svg.setAttribute("data-visible-transitions", String(visible.length));
      svg.setAttribute("data-groups", String(groupsShown.length));

      // axis
      const axis = s("g", { class: "axis" });
      svg.append(axis);
      axis.append(s("text", { x: 6, y: yAxis + 13, text: "step" }));
      const ticks = Math.max(2, Math.min(8, Math.floor(plotW / 90)));
      let lastTick = null;
      for (let k = 0; k <= ticks; k++) {
        // Ticks at whole steps (boundaries), each step once.
        const t = Math.round(toT(v0 + ((v1 - v0) * k) / ticks));
        if (t === lastTick || t > T - 1) continue;
        lastTick = t;
        const x = px(toU(t));
        axis.append(s("line", { x1: x, x2: x, y1: yAxis - 3, y2: yAxis + 2 }));
        axis.append(s("text", { x: Math.min(Math.max(x, LEFT + 4), W - 30), y: yAxis + 13, "text-anchor": "middle", text: String(t) }));
      }
      summary.textContent = "steps " + t0 + "–" + Math.min(t1, T - 1) + " · " + visible.filter((t) => !t.minor).length + " transitions in view" + (groupsShown.length ? " · " + groupsShown.length + " groups" : "");
      drawOverview(W, plotW, v0, v1);
    }

    function drawOverview(W, plotW, v0, v1) {
      overview.replaceChildren();
      overview.setAttribute("viewBox", "0 0 " + W + " 26");
      const px = (u) => LEFT + (u / totalU) * plotW;
      overview.append(s("text", { class: "lane-label sub", x: 6, y: 16, text: "whole run" }));
      let run = null;
      const emit = (r) => overview.append(s("rect", { x: r.x0, y: r.user ? 4 : 13, width: Math.max(1, r.x1 - r.x0), height: 9, fill: r.user ? "#3d7dd8" : "#d9822b" }));
      for (let i = 0; i < segs.length; i++) {
        const sg = segs[i];
        const x0 = px(toU(sg.from)), x1 = px(toU(sg.to + 1));
        const user = sg.cpl === 3;
        if (run && run.user === user && x0 - run.x1 < 0.75) run.x1 = x1;
        else {
          if (run) emit(run);
          run = { x0, x1, user };
        }
      }
      if (run) emit(run);
      overview.append(s("rect", { class: "viewport", x: px(v0), y: 1, width: Math.max(2, px(v1) - px(v0)), height: 24 }));
    }

    // ---- interaction --------------------------------------------------------------------------
    // Wheel and drag come faster than a long run draws: one draw per frame.
    let drawPending = false;
    function requestDraw() {
      if (drawPending) return;
      drawPending = true;
      requestAnimationFrame(() => {
        drawPending = false;
        draw();
      });
    }
    function zoom(factor, atU, deferred) {
      const [v0, v1] = state.view || [0, totalU];
      const c = atU === undefined ? (v0 + v1) / 2 : atU;
      let w = Math.max(4, Math.min(totalU, (v1 - v0) * factor));
      let n0 = c - ((c - v0) / (v1 - v0)) * w;
      n0 = Math.max(0, Math.min(totalU - w, n0));
      state.view = w >= totalU ? null : [n0, n0 + w];
      if (deferred) requestDraw();
      else draw();
    }
    function uAtX(clientX) {
      const r = svg.getBoundingClientRect();
      const W = Math.max(320, wrap.clientWidth);
      const x = ((clientX - r.left) / r.width) * W;
      const [v0, v1] = state.view || [0, totalU];
      return v0 + ((x - LEFT) / (W - LEFT - RIGHT)) * (v1 - v0);
    }
    svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      zoom(Math.pow(1.2, e.deltaY / 100), uAtX(e.clientX), true);
    }, { passive: false });
    let drag = null;
    svg.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, view: state.view || [0, totalU], moved: false };
      svg.setPointerCapture(e.pointerId);
    });
    svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      if (Math.abs(dx) > 3) drag.moved = true;
      if (!drag.moved) return;
      svg.classList.add("dragging");
      const r = svg.getBoundingClientRect();
      const W = Math.max(320, wrap.clientWidth);
      const [v0, v1] = drag.view;
      const du = (-(dx / r.width) * W / (W - LEFT - RIGHT)) * (v1 - v0);
      const w = v1 - v0;
      const n0 = Math.max(0, Math.min(totalU - w, v0 + du));
      state.view = [n0, n0 + w];
      requestDraw();
    });
    svg.addEventListener("pointerup", (e) => {
      svg.classList.remove("dragging");
      const wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) return;
      // A click (the pointer is captured by the SVG, so look at what lies under it): a group
      // block expands and zooms to its round trips; otherwise the nearest transition within 8 px.
      const under = document.elementFromPoint(e.clientX, e.clientY);
      const block = under && under.closest ? under.closest("[data-testid=group]") : null;
      if (block) {
        const g = m.groups.find((x) => x.first === Number(block.getAttribute("data-first")));
        if (g) {
          state.expanded.add(g.first);
          state.view = [toU(g.from), toU(g.to + 1)];
          draw();
        }
        return;
      }
      const u = uAtX(e.clientX);
      const [v0, v1] = state.view || [0, totalU];
      const tolerance = ((v1 - v0) / Math.max(1, wrap.clientWidth)) * 8;
      let best = null;
      for (const t of visibleTransitions(Math.floor(toT(u - tolerance)), Math.ceil(toT(u + tolerance)))) {
        if (hiddenByGroup(t)) continue;
        const d = Math.abs(toU(t.step) - u);
        if (d <= tolerance && (!best || d < best.d)) best = { t, d };
      }
      if (best) select(best.t.id, true);
    });
    overview.addEventListener("click", (e) => {
      const r = overview.getBoundingClientRect();
      const W = Math.max(320, wrap.clientWidth);
      const x = ((e.clientX - r.left) / r.width) * W;
      const u = ((x - LEFT) / (W - LEFT - RIGHT)) * totalU;
      const [v0, v1] = state.view || [0, totalU];
      const w = v1 - v0;
      if (w >= totalU) return;
      const n0 = Math.max(0, Math.min(totalU - w, u - w / 2));
      state.view = [n0, n0 + w];
      draw();
    });
    document.addEventListener("keydown", (e) => {
      if (e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT")) return;
      if (e.key === "j") selectRelative(1);
      if (e.key === "k") selectRelative(-1);
    });
    function selectRelative(d) {
      const major = transitions.filter((t) => !t.minor || state.showMinor);
      if (major.length === 0) return;
      const at = state.selected === null ? -1 : major.findIndex((t) => t.id === state.selected);
      const next = major[Math.max(0, Math.min(major.length - 1, at + d))];
      select(next.id, true);
    }

    /** Selects a transition: the timeline keeps it in view, the list and steps follow. */
    function select(id, reveal) {
      state.selected = id;
      const t = transitions[id];
      if (reveal && state.view) {
        const u = toU(t.step);
        const [v0, v1] = state.view;
        if (u < v0 || u > v1) {
          const w = v1 - v0;
          const n0 = Math.max(0, Math.min(totalU - w, u - w / 2));
          state.view = [n0, n0 + w];
        }
      }
      const g = reveal ? hiddenByGroup(t) : null;
      if (g) state.expanded.add(g.first);
      draw();
      list.redraw();
      const at = listed.findIndex((x) => x.id === id);
      if (at !== -1) list.scrollTo(at);
      renderDetail(t);
      selectStep(t.step, false);
    }

    // ---- the transition list ------------------------------------------------------------------
    let listed = transitions.filter((t) => !t.minor);
    let list = null;
    function buildList() {
      listBox.replaceChildren();
      list = virtualList(listBox, listed.length, 30, listRow);
      listBox.style.height = Math.min(560, Math.max(120, listed.length * 30 + 4)) + "px";
      list.draw();
    }
    minorBox.addEventListener("change", () => {
      listed = transitions.filter((t) => minorBox.checked || !t.minor);
      buildList();
      if (state.selected !== null) list.scrollTo(Math.max(0, listed.findIndex((t) => t.id === state.selected)));
    });
    function listRow(i) {
      const t = listed[i];
      const row = h("div", { class: "row" + (state.selected === t.id ? " selected" : ""), "data-testid": "transition-row", "data-id": t.id, tabindex: 0, role: "button" },
        h("span", { class: "n", text: "#" + t.step }),
        h("span", null, h("span", { class: "kind", style: "background:" + (KIND_COLOR[t.kind] || "#333"), text: t.label }),
          h("span", { class: "path", text: "CPL " + t.from.cpl + " → " + t.to.cpl + (t.failed ? " · failed " + t.failed.instruction : "") })));
      row.style.position = "absolute";
      row.style.left = "0";
      row.style.right = "0";
      row.style.height = "30px";
      row.addEventListener("click", () => select(t.id, true));
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") select(t.id, true); });
      return row;
    }
    listBox.style.position = "relative";
    buildList();

    // ---- the detail of a transition -------------------------------------------------------------
    function endpointText(e) {
      return "CPL " + e.cpl + " (" + modeName(e.mode) + ") at " + e.rip + (e.at ? " <" + e.at + ">" : "") + ", RSP " + e.rsp + " (" + e.stack + " stack)";
    }
    function renderDetail(t) {
      detail.replaceChildren();
      detail.setAttribute("data-transition", String(t.id));
      detail.append(h("div", { class: "transition-title", "data-testid": "detail-title", text: t.title }));
      detail.append(h("div", { class: "endpoints" }, endpointText(t.from), h("br"), "→ ", endpointText(t.to)));
      if (t.failed) {
        detail.append(h("div", { class: "failed-banner", "data-testid": "failed" },
          h("b", { text: t.failed.instruction + " failed" }), t.failed.rule ? [" at ", ruleChip(t.failed.rule, m.rules)] : null, ": ", t.failed.why));
      }
      if (t.sequence.length === 0 && t.frames.length === 0) detail.append(h("p", { class: "empty", text: "No sequence or frame kept for this transition (over the detail limit)." }));
      if (t.sequence.length) detail.append(h("h3", { text: "Mode-transfer sequence" }));
      for (const part of t.sequence) {
        const ol = h("ol", { class: "seq" });
        for (const l of part.lines) {
          const mark = l.status === "failed" ? "✗" : l.status === "passed" || (l.status === "reported" && l.phase === "check") ? "✓" : l.status === "derived" ? "·" : "•";
          ol.append(h("li", { class: l.status + " phase-" + l.phase, "data-testid": "sequence-line", "data-rule": l.rule || "", "data-status": l.status },
            h("span", { class: "st", title: statusTitle(l.status), text: mark }),
            l.rule ? ruleChip(l.rule, m.rules) : h("span"),
            h("span", { class: "txt", text: l.text }),
            l.why ? h("span", { class: "why", text: l.why }) : null));
        }
        detail.append(h("div", { class: "part", "data-testid": "sequence-part" },
          h("div", { class: "part-title" }, h("span", { text: part.title }), part.failed ? h("span", { class: "tag", text: "faulted" }) : null),
          ol,
          part.also.length ? h("div", { class: "also" }, "also exercised: ", part.also.map((a, i) => [i ? ", " : "", ruleChip(a.rule, m.rules), a.count > 1 ? " ×" + a.count : ""])) : null));
      }
      if (t.frames.length) {
        detail.append(h("h3", { text: "Stack frame" }));
        detail.append(h("div", { class: "frames" }, t.frames.map(renderFrame)));
      }
      detail.append(h("p", null, h("button", { type: "button", text: "show step " + t.step, onclick: () => selectStep(t.step, true) })));
    }
    function statusTitle(status) {
      return {
        reported: "the engine reported this rule here",
        passed: "a check that passed (the spec records these only when they fail; placed in the SDM's order)",
        failed: "the check that failed",
        derived: "read from the states (this engine reports no rules)",
      }[status];
    }
    function renderFrame(f) {
      const box = h("div", { class: "frame", "data-testid": "frame" }, h("div", { class: "frame-title", text: f.title }));
      if (f.cells.length) {
        const table = h("table", { class: "cells" }, h("thead", null, h("tr", null, ["address", "before", "after", "slot", m.frameLayout ? m.frameLayout : "", ""].map((x) => h("th", { text: x })))));
        const tb = h("tbody");
        for (const c of f.cells) {
          const marks = f.marks.filter((k) => k.address === c.address).map((k) => "← " + k.label).join("  ");
          tb.append(h("tr", { class: c.role, "data-testid": "frame-cell", "data-address": c.address, "data-name": c.name || "", "data-after": c.after || "" },
            h("td", { text: c.address }),
            h("td", { class: "before", text: c.before === null ? "(not mapped)" : c.before }),
            h("td", { class: "after", text: c.after === null ? "(not mapped)" : c.after }),
            h("td", { class: "name", text: (c.name || "") + (c.symbol ? " <" + c.symbol + ">" : "") }),
            h("td", { class: "field", text: c.field || "" }),
            h("td", { class: "mark", text: marks })));
        }
        table.append(tb);
        box.append(table);
        const elsewhere = f.marks.filter((k) => !f.cells.some((c) => c.address === k.address));
        if (elsewhere.length) box.append(h("div", { class: "path" }, elsewhere.map((k) => k.label + ": " + k.address).join(" · ")));
      }
      if (f.registers.length) {
        box.append(h("table", { class: "regs" }, h("tbody", null, f.registers.map((r) => h("tr", { "data-testid": "frame-register", "data-name": r.name },
          h("td", { text: r.name }), h("td", { text: r.before }), h("td", { text: "→" }), h("td", { text: r.after }), h("td", { class: "note", text: r.note || "" }))))));
      }
      if (f.notes.length) box.append(h("ul", { class: "notes" }, f.notes.map((n) => h("li", { text: n }))));
      return box;
    }

    // ---- steps ----------------------------------------------------------------------------------
    const steps = m.steps;
    const transitionSteps = new Set(transitions.map((t) => t.step));
    const transitionAtStep = new Map(transitions.map((t) => [t.step, t.id]));
    const stepIndex = new Map(steps.map((st, i) => [st.step, i]));
    function eventText(ev) {
      if (ev.kind === "delivered") return "delivered " + ev.vector + (ev.error_code === null ? "" : " (" + ev.error_code + ")") + " " + ev.source;
      if (ev.kind === "io") return ev.direction + " port 0x" + ev.port.toString(16);
      return ev.kind;
    }
    stepsBox.style.height = Math.min(360, Math.max(60, steps.length * 22 + 4)) + "px";
    const stepList = virtualList(stepsBox, steps.length, 22, (i) => {
      const st = steps[i];
      const row = h("div", { class: "srow" + (transitionSteps.has(st.step) ? " transition" : "") + (state.step === st.step ? " selected" : ""), "data-testid": "step-row", "data-step": st.step },
        h("span", { class: "c", text: String(st.step) }),
        h("span", { class: "c", text: st.linear + (st.at ? " <" + st.at + ">" : "") }),
        h("span", { class: "c", text: st.instruction ? st.instruction.disassembly : "(event at boundary)" }),
        h("span", { class: "c ev", text: eventText(st.event) + (st.changes.length ? " · " + st.changes.map((c) => c.field.replace(/^(regs|sregs|msrs)\./, "")).join(" ") : "") }));
      row.addEventListener("click", () => {
        // A transition's step selects the transition too (its sequence and frame).
        const t = transitionAtStep.get(st.step);
        if (t !== undefined) select(t, false);
        else selectStep(st.step, false);
      });
      return row;
    });
    function selectStep(n, reveal) {
      state.step = n;
      const i = stepIndex.get(n);
      stepList.redraw();
      changesBox.replaceChildren();
      if (i === undefined) {
        changesBox.append(h("p", { class: "empty", text: "Step " + n + " is not recorded." }));
        return;
      }
      stepList.scrollTo(i);
      const st = steps[i];
      changesBox.append(h("div", null, h("b", { text: "step " + st.step + " " }), h("span", { text: (st.instruction ? st.instruction.disassembly + " (" + st.instruction.bytes + ")" : "event at the boundary") + " — " + eventText(st.event) })));
      changesBox.append(h("table", null, h("tbody", null, st.changes.map((c) => h("tr", { "data-testid": "change" }, h("td", { class: "f", text: c.field }), h("td", { text: String(c.before) }), h("td", { text: "→" }), h("td", { text: String(c.after) }))))));
      if (st.rules && st.rules.length) changesBox.append(h("div", { class: "also" }, "rules in order: ", dedupe(st.rules).map((r, k) => [k ? " " : "", ruleChip(r, m.rules)])));
      if (reveal) stepsBox.scrollIntoView({ block: "nearest" });
    }
    function dedupe(rules) {
      const out = [];
      for (const r of rules) if (out[out.length - 1] !== r) out.push(r);
      return out;
    }

    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(draw, 60);
    });
    draw();
    stepList.draw();
    const first = transitions.find((t) => !t.minor);
    if (first) select(first.id, false);
  }

  function laneList(segs) {
    const seen = new Map();
    for (const sg of segs) seen.set(sg.cpl + ":" + (sg.mode === "64" ? 0 : 1), { cpl: sg.cpl, compat: sg.mode !== "64" });
    const lanes = [...seen.values()];
    if (!lanes.some((l) => l.cpl === 3)) lanes.push({ cpl: 3, compat: false });
    if (!lanes.some((l) => l.cpl === 0)) lanes.push({ cpl: 0, compat: false });
    return lanes.sort((a, b) => b.cpl - a.cpl || Number(a.compat) - Number(b.compat));
  }

  function legend() {
    const item = (color, text) => h("span", null, h("span", { class: "swatch", style: "background:" + color }), text);
    return h("div", { class: "legend" },
      item("#3d7dd8", "user mode"), item("#7a5cc7", "compatibility mode"), item("#d9822b", "kernel mode"),
      item("#6aa56f", "IF = 1"), item("#dbe8fa", "user stack / GS.base the user's"), item("#fbe6d0", "RSP0 stack / GS.base the kernel's"),
      item("#e8dcf7", "IST stack"), item("#c8372d", "GS.base the kernel's in user mode"),
      ...["syscall", "int", "exception", "irq", "nmi", "iret", "swapgs"].map((k) => item(KIND_COLOR[k], KIND_NAME[k])));
  }

  // =============================================================================================
  // A divergence
  // =============================================================================================

  function renderDivergence(d) {
    app.append(h("header", { class: "top" },
      h("h1", { text: d.title }),
      h("div", { class: "meta" },
        h("span", null, "engines ", h("b", { text: d.engines.a }), " and ", h("b", { text: d.engines.b })),
        h("span", null, "first disagreement at step ", h("b", { text: String(d.step) })),
        h("span", { "data-testid": "difference-count" }, h("b", { text: String(d.differences.length) }), " fields differ"),
        d.source ? h("span", null, "from ", h("b", { text: d.source })) : null),
      h("div", { class: "command" }, h("span", { class: "path", text: "replay" }), h("code", { "data-testid": "replay", text: d.replay }),
        h("button", { type: "button", text: "copy", onclick: (e) => copy(d.replay, e.target) }))));
    const main = h("main");
    app.append(main);
    const rules = d.rules || {};
    main.append(h("section", { class: "panel" }, h("h2", { text: "What each engine did at step " + d.step }),
      h("div", { class: "events", "data-testid": "events" },
        h("span", { text: d.engines.a }), h("span", { text: d.events.a }),
        h("span", { text: d.engines.b }), h("span", { text: d.events.b })),
      d.rulesHit && d.rulesHit.length ? h("div", { class: "also" }, "rules " + d.engines.a + " exercised at this step, in order: ", d.rulesHit.map((r, i) => [i ? " " : "", ruleChip(r, rules)])) : null,
      d.notCompared && d.notCompared.length ? h("div", { class: "also", text: "not compared (an engine cannot observe them): " + d.notCompared.join(", ") }) : null));

    const only = h("input", { type: "checkbox", "data-testid": "only-differences" });
    const table = h("table", { class: "fields", "data-testid": "fields" });
    table.append(h("thead", null, h("tr", null, h("th", { text: "field" }), h("th", { text: d.engines.a }), h("th", { text: d.engines.b }))));
    const tb = h("tbody");
    let group = null;
    for (const r of d.rows) {
      if (r.group !== group) {
        group = r.group;
        tb.append(h("tr", { class: "group" + (d.rows.some((x) => x.group === group && x.differs) ? "" : " same") }, h("td", { colspan: 3, text: group })));
      }
      tb.append(h("tr", { class: r.differs ? "differs" : "same", "data-testid": "field-row", "data-field": r.field },
        h("td", { class: "field", text: r.field }), h("td", { text: show(r.a) }), h("td", { text: show(r.b) })));
    }
    table.append(tb);
    only.addEventListener("change", () => table.classList.toggle("only-differences", only.checked));
    main.append(h("section", { class: "panel" },
      h("div", { class: "toolbar" }, h("h2", { text: "The two states after step " + d.step, style: "margin:0" }), h("span", { class: "spacer" }), h("label", null, only, "only the differing fields")),
      h("div", { style: "max-height: 640px; overflow: auto" }, table)));

    main.append(h("section", { class: "panel", "data-testid": "last-steps" }, h("h2", { text: "The last steps before it (" + d.engines.a + ")" }),
      d.lastSteps.length === 0 ? h("p", { class: "empty", text: "none recorded" }) :
        h("table", { class: "fields" }, h("tbody", null, d.lastSteps.map((st) => h("tr", { class: st.step === d.step ? "differs" : "same" },
          h("td", { text: String(st.step) }), h("td", { text: st.linear }), h("td", { text: st.instruction ? st.instruction.disassembly : "(event at boundary)" }),
          h("td", { text: st.changes.map((c) => c.field.replace(/^(regs|sregs|msrs)\./, "") + "=" + String(c.after)).join(" ") })))))));
    const ids = Object.keys(rules).sort();
    if (ids.length) main.append(h("section", { class: "panel" }, h("h2", { text: "Rules" }), h("dl", { class: "rules" }, ids.map((id) => [h("dt", { id: "rule-" + id, text: id }), h("dd", null, rules[id].description, " ", h("span", { class: "src", text: "— " + rules[id].source }))]))));
  }
  function show(v) {
    return v === null || v === undefined ? "—" : String(v);
  }
  function copy(text, button) {
    const done = () => { button.textContent = "copied"; setTimeout(() => (button.textContent = "copy"), 1200); };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, () => {});
  }

  if (payload.kind === "trace") renderTrace(payload.model);
  else if (payload.kind === "divergence") renderDivergence(payload.model);
  else app.append(h("p", { text: "Unknown page data." }));
  document.documentElement.setAttribute("data-ready", "true");
})();
