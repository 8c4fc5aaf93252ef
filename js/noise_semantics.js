// Noise Semantics: live previews on the pack's nodes (ComfyUI frontend extension).
//
// * "Temporal Weight Schedule" (NoiseSemanticTemporalSchedule): the weight curve w(tau) over
//   tau in [0, 1] (1 = pure noise, drawn on the left) with the probe times as dots.
// * "Noise Semantic Inject" (NoiseSemanticInject): the mix z' = (z + d e) / sqrt(1 + d^2), shown
//   as the noise share 1/sqrt(1+d^2) and the semantics share d/sqrt(1+d^2) for strength d (exact
//   with decorrelate on and direction guided; with decorrelate off, e overlaps z and the preview says
//   the shares are nominal; with direction prompt, e keeps its own size, unknown before the run, so
//   no share is shown). At strength 0, decorrelate and direction do nothing: shown inactive.
//
// Both previews are canvas widgets (the frontend's custom-widget API: draw + computeSize). They
// read the node's widget values on every draw, so they follow any change, however it is made.
// They are never serialized: workflows and prompts stay exactly as without this extension.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const SCHEDULE_NODE = "NoiseSemanticTemporalSchedule";
const INJECT_NODE = "NoiseSemanticInject";
const CURVE_WIDGET = "ns_schedule_preview";
const MIX_WIDGET = "ns_mix_preview";
const CURVE_HEIGHT = 150;
const MIX_HEIGHT = 62;
const ACCENT = "#6cb2ff";
const NOISE = "#9a9a9a";
const WARN = "#ff7a6b";

// --------------------------------------------------------------------------- the maths
// A copy of noise_semantics/core.py make_schedule (same checks, same order, same formula):
//   taus = linspace(tau_max, tau_min, probes)  (probes = 1 -> [tau_max])
//   bump: w(tau) = max(1 - |(tau - center) / half_width|^(2 * flatness), 0);  uniform: w = 1
// tests/browser/test_browser.py compares it with the Python original.
export function bumpWeight(tau, center, halfWidth, flatness) {
  return Math.max(1 - Math.pow(Math.abs((tau - center) / halfWidth), 2 * flatness), 0);
}

export function makeSchedule({ probes, tau_min, tau_max, weighting, center, half_width, flatness }) {
  const fail = (what, fix) => ({ error: `${what}. Fix: ${fix}`, taus: [], weights: [] });
  if (!Number.isInteger(probes) || probes < 1) return fail(`probes is ${probes}`, "use 1 or more probes");
  // uniform weighting ignores center / half_width / flatness (the node passes core's defaults)
  const numbers = weighting === "uniform" ? { tau_min, tau_max } : { tau_min, tau_max, center, half_width, flatness };
  for (const [name, v] of Object.entries(numbers)) {
    if (typeof v !== "number" || !Number.isFinite(v)) return fail(`${name} is ${v}`, `give ${name} a finite number`);
  }
  if (!(tau_min > 0 && tau_min <= 1 && tau_max > 0 && tau_max <= 1))
    return fail(`time range [${tau_min}, ${tau_max}] leaves (0, 1]`, "keep tau_min and tau_max in (0, 1]");
  if (tau_min > tau_max) return fail(`tau_min ${tau_min} > tau_max ${tau_max}`, "swap them");
  if (probes > 1 && tau_min === tau_max)
    return fail(`time range is empty but probes is ${probes}`, "widen the range, or use probes = 1");
  if (weighting !== "bump" && weighting !== "uniform") return fail(`weighting is ${weighting}`, "choose bump or uniform");
  const taus = [];
  if (probes === 1) taus.push(tau_max);
  else for (let k = 0; k < probes; k++) taus.push(tau_max + ((tau_min - tau_max) * k) / (probes - 1));
  if (weighting === "uniform") return { error: null, taus, weights: taus.map(() => 1), w: () => 1 };
  if (half_width <= 0) return fail(`half_width is ${half_width}`, "use a half-width > 0");
  if (flatness <= 0) return fail(`flatness is ${flatness}`, "use a flatness > 0");
  const w = (t) => bumpWeight(t, center, half_width, flatness);
  const weights = taus.map(w);
  if (weights.every((x) => x === 0))
    return fail(`the bump gives every probe in [${tau_min}, ${tau_max}] zero weight`,
                "move the center into the time range or widen half_width");
  return { error: null, taus, weights, w };
}

export function mixShares(strength) {
  const d = Number(strength);
  if (!Number.isFinite(d) || d < 0) return { error: `strength is ${strength}. Fix: use a strength >= 0` };
  const n = Math.sqrt(1 + d * d);
  return { error: null, strength: d, noise: 1 / n, semantics: d / n };
}

// --------------------------------------------------------------------------- helpers
const LG = () => globalThis.LiteGraph ?? {};
const colors = () => ({
  bg: LG().WIDGET_BGCOLOR ?? "#222",
  outline: LG().WIDGET_OUTLINE_COLOR ?? "#666",
  text: LG().WIDGET_TEXT_COLOR ?? "#ddd",
  dim: LG().WIDGET_SECONDARY_TEXT_COLOR ?? "#999",
});

function widgetValues(node) {
  const out = {};
  for (const w of node.widgets ?? []) if (w?.name) out[w.name] = w.value;
  return out;
}

function fmt(x, digits = 2) {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  if (ctx.roundRect) ctx.roundRect(x, y, w, h, r);
  else ctx.rect(x, y, w, h);
}

function wrapText(ctx, text, maxWidth) {
  const lines = [];
  let line = "";
  for (const word of text.split(" ")) {
    const next = line ? `${line} ${word}` : word;
    if (ctx.measureText(next).width > maxWidth && line) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

// Give a node loaded from a workflow (saved with another size) room for its preview.
function fitNode(node) {
  const min = node.computeSize();
  if (node.size[0] < min[0] || node.size[1] < min[1])
    node.setSize([Math.max(node.size[0], min[0]), Math.max(node.size[1], min[1])]);
}

// Redraw the preview when any widget of the node changes (the canvas repaints on its own; the
// Vue node renderer repaints a canvas widget only through triggerDraw).
function redrawOnChange(node, preview) {
  for (const w of node.widgets ?? []) {
    if (w === preview) continue;
    const cb = w.callback;
    w.callback = function (...args) {
      const r = cb?.apply(this, args);
      preview.onChange?.(node);
      preview.triggerDraw?.();
      node.setDirtyCanvas?.(true, false);
      return r;
    };
  }
}

// A rounded panel under the widgets; the caller restores ctx.
function drawPanel(ctx, c, width, y, height) {
  const x0 = 15, x1 = width - 15, top = y + 4, bottom = y + height - 4;
  ctx.save();
  roundRect(ctx, x0, top, x1 - x0, bottom - top, 6);
  ctx.fillStyle = c.bg;
  ctx.fill();
  ctx.strokeStyle = c.outline;
  ctx.lineWidth = 1;
  ctx.stroke();
  return { x0, x1, top, bottom };
}

// --------------------------------------------------------------------------- schedule curve
function drawSchedule(ctx, node, width, y, height) {
  const c = colors();
  const v = widgetValues(node);
  const s = makeSchedule(v);
  const { x0, x1, top, bottom } = drawPanel(ctx, c, width, y, height);

  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  if (s.error) {
    ctx.fillStyle = WARN;
    let ty = top + 8;
    for (const line of wrapText(ctx, s.error, x1 - x0 - 16)) {
      ctx.fillText(line, x0 + 8, ty);
      ty += 14;
    }
    ctx.restore();
    node.__nsCurve = { error: s.error, points: [], probes: [], weighting: v.weighting, draws: (node.__nsCurve?.draws ?? 0) + 1 };
    return;
  }

  // plot area: tau runs from 1 (pure noise, left) to 0 (clean image, right); w from 0 to 1
  const px0 = x0 + 22, px1 = x1 - 10, py0 = top + 22, py1 = bottom - 22;
  const X = (tau) => px0 + (1 - tau) * (px1 - px0);
  const Y = (w) => py1 - w * (py1 - py0);

  // title: what the probes cost
  const active = s.weights.filter((w) => w > 0).length;
  ctx.fillStyle = c.text;
  ctx.textAlign = "left";
  ctx.fillText(v.weighting === "uniform" ? "w(τ) = 1 (uniform)" : "w(τ) bump", x0 + 8, top + 5);
  ctx.fillStyle = c.dim;
  ctx.textAlign = "right";
  ctx.fillText(`${s.taus.length} probe${s.taus.length === 1 ? "" : "s"}, ${active} weighted`, x1 - 8, top + 5);

  // probe range [tau_min, tau_max]
  ctx.fillStyle = "rgba(108,178,255,0.10)";
  ctx.fillRect(X(v.tau_max), py0, Math.max(X(v.tau_min) - X(v.tau_max), 1), py1 - py0);

  // axes and labels
  ctx.strokeStyle = c.outline;
  ctx.beginPath();
  ctx.moveTo(px0, py0);
  ctx.lineTo(px0, py1);
  ctx.lineTo(px1, py1);
  ctx.stroke();
  ctx.fillStyle = c.dim;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  ctx.fillText("1", px0 - 4, py0);
  ctx.fillText("0", px0 - 4, py1);
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText("τ=1 noise", px0, py1 + 5);
  ctx.textAlign = "right";
  ctx.fillText("0 clean", px1, py1 + 5);
  ctx.textAlign = "center";
  ctx.fillText("τ", (px0 + px1) / 2, py1 + 5);

  // the curve w(tau) over [0, 1]
  const points = [];
  const N = 120;
  for (let i = 0; i <= N; i++) {
    const tau = 1 - i / N;
    points.push([tau, s.w(tau)]);
  }
  ctx.beginPath();
  ctx.moveTo(X(points[0][0]), Y(0));
  for (const [tau, w] of points) ctx.lineTo(X(tau), Y(w));
  ctx.lineTo(X(points[N][0]), Y(0));
  ctx.closePath();
  ctx.fillStyle = "rgba(108,178,255,0.18)";
  ctx.fill();
  ctx.beginPath();
  points.forEach(([tau, w], i) => (i ? ctx.lineTo(X(tau), Y(w)) : ctx.moveTo(X(tau), Y(w))));
  ctx.strokeStyle = ACCENT;
  ctx.lineWidth = 2;
  ctx.stroke();

  // probes: filled dots carry weight; hollow ones weigh 0 and are never sent to the model
  const probes = s.taus.map((tau, k) => ({ tau, w: s.weights[k] }));
  for (const { tau, w } of probes) {
    ctx.beginPath();
    ctx.arc(X(tau), Y(w), 3.5, 0, 2 * Math.PI);
    if (w > 0) {
      ctx.fillStyle = "#ffd166";
      ctx.fill();
    } else {
      ctx.strokeStyle = "#ffd166";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
  }
  ctx.restore();
  // read by tests/browser/test_browser.py (and handy in the devtools console)
  node.__nsCurve = { error: null, points, probes, weighting: v.weighting, draws: (node.__nsCurve?.draws ?? 0) + 1 };
}

// --------------------------------------------------------------------------- inject mix
// strength 0: nothing is mixed in, so decorrelate and direction do nothing (screening ignores them):
// their widgets are disabled (greyed) until strength is raised. Returns the inactive names.
function markInactive(node) {
  const m = mixShares(widgetValues(node).strength);
  const inactive = !m.error && m.strength === 0 ? ["decorrelate", "direction"] : [];
  for (const w of node.widgets ?? [])
    if (w.name === "decorrelate" || w.name === "direction") w.disabled = inactive.includes(w.name);
  return inactive;
}

function drawMix(ctx, node, width, y, height) {
  const c = colors();
  const v = widgetValues(node);
  const m = mixShares(v.strength);
  // guided: e is standardized, the shares hold (exactly with decorrelate on; off: e overlaps z).
  // prompt: e = sum w (D_cond - D_uncond) keeps its own size (near 0 where the noise already agrees),
  // so the mix is z + d e, re-standardized: its shares depend on the model's answer, not on d alone.
  const prompt = v.direction === "prompt";
  const exact = v.decorrelate !== false && !prompt;
  const inactive = markInactive(node);
  const { x0, x1, top, bottom } = drawPanel(ctx, c, width, y, height);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  if (m.error) {
    ctx.fillStyle = WARN;
    ctx.fillText(m.error, x0 + 8, (top + bottom) / 2);
    ctx.restore();
    node.__nsMix = { error: m.error, draws: (node.__nsMix?.draws ?? 0) + 1 };
    return;
  }
  const labelW = Math.max(ctx.measureText("noise z").width, ctx.measureText("semantics e").width) + 10;
  const valueW = ctx.measureText("×0.000").width + 8;
  const bx0 = x0 + 8 + labelW, bx1 = x1 - 8 - valueW;
  const unknown = prompt && m.strength > 0;
  const rows = [
    ["noise z", unknown ? null : m.noise, NOISE],
    ["semantics e", unknown ? null : m.semantics, ACCENT],
  ];
  const rowH = (bottom - top - 18) / 2;
  rows.forEach(([label, share, color], i) => {
    const cy = top + 4 + rowH * (i + 0.5);
    ctx.fillStyle = c.dim;
    ctx.textAlign = "left";
    ctx.fillText(label, x0 + 8, cy);
    ctx.fillStyle = "rgba(255,255,255,0.06)";
    ctx.fillRect(bx0, cy - 5, bx1 - bx0, 10);
    ctx.fillStyle = c.text;
    ctx.textAlign = "right";
    if (share === null) { // direction prompt: the share depends on the run
      ctx.fillText("×?", x1 - 8, cy);
      return;
    }
    ctx.fillText(`×${fmt(share, 3)}`, x1 - 8, cy);
    ctx.fillStyle = color;
    ctx.fillRect(bx0, cy - 5, Math.max((bx1 - bx0) * share, share > 0 ? 1 : 0), 10);
  });
  ctx.fillStyle = exact || m.strength === 0 || prompt ? c.dim : WARN;
  ctx.textAlign = "center";
  // candidates > 1 (screening) probes the model even at strength 0: it picks a noise, then mixes nothing in.
  const candidates = Math.max(1, Math.round(Number(v.candidates ?? 1)) || 1);
  const note = m.strength === 0
    ? candidates > 1
      ? `screening ${candidates} noises: the best one, unmixed`
      : "strength 0: noise unchanged, no model call"
    : prompt
      ? "prompt: mix set by the model's cond − uncond"
      : exact
      ? `z' = ${fmt(m.noise, 3)}·z + ${fmt(m.semantics, 3)}·e  (unit variance)`
      : "decorrelate off: e overlaps z, shares are nominal";
  ctx.fillText(note, (x0 + x1) / 2, bottom - 9);
  ctx.restore();
  const shown = unknown ? { noise: null, semantics: null } : {};
  node.__nsMix = { error: null, ...m, ...shown, exact, direction: prompt ? "prompt" : "guided", inactive, candidates,
                   note, draws: (node.__nsMix?.draws ?? 0) + 1 };
}

// --------------------------------------------------------------------------- registration
function addPreview(node, name, height, draw, onChange) {
  const preview = node.addCustomWidget({
    onChange,
    name,
    type: "ns_preview",
    value: null,
    serialize: false, // not in widgets_values
    options: { serialize: false }, // not in the prompt
    draw(ctx, n, width, y) {
      draw(ctx, n, width, y, height);
    },
    computeSize(width) {
      return [width ?? 0, height];
    },
  });
  redrawOnChange(node, preview);
  onChange?.(node);
  fitNode(node);
  return preview;
}

const PREVIEWS = {
  [SCHEDULE_NODE]: [CURVE_WIDGET, CURVE_HEIGHT, drawSchedule],
  [INJECT_NODE]: [MIX_WIDGET, MIX_HEIGHT, drawMix, markInactive],
};

app.registerExtension({
  name: "noisesemantics.Previews",
  beforeRegisterNodeDef(nodeType, nodeData) {
    const spec = PREVIEWS[nodeData?.name];
    if (!spec) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const r = onNodeCreated?.apply(this, args);
      addPreview(this, ...spec);
      return r;
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (...args) {
      const r = onConfigure?.apply(this, args);
      spec[3]?.(this); // widget values are loaded now
      fitNode(this);
      return r;
    };
  },
});

// --------------------------------------------------------------------------- input labels
// An input whose schema sets display_name keeps its id (saved workflows and prompts use it) but is
// shown by that name: Erase's INT 'samples' reads "noises combined (n)", so it is not taken for
// ComfyUI's LATENT 'samples'. The frontends tested label a widget by its id (or a locale file), so
// the label is set here, from the node definition the server sent.
const OUR_NODES = ["NoiseSemanticErase", INJECT_NODE, SCHEDULE_NODE];

function labelsFromSchema(node, nodeData) {
  for (const section of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(nodeData?.input?.[section] ?? {})) {
      const label = spec?.[1]?.display_name;
      if (!label) continue;
      for (const w of node.widgets ?? []) if (w.name === name) w.label = label;
      for (const i of node.inputs ?? []) if (i.name === name) i.label = label;
    }
  }
}

app.registerExtension({
  name: "noisesemantics.Labels",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (!OUR_NODES.includes(nodeData?.name)) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function (...args) {
      const r = onNodeCreated?.apply(this, args);
      labelsFromSchema(this, nodeData);
      return r;
    };
  },
});

// --------------------------------------------------------------------------- reports after a run
// Noise Semantic Inject (from the sampler's run) and Noise Semantic Preview say what they did as
// ComfyUI progress text sent to their own node (PromptServer.send_progress_text, Python side); the
// frontend shows it in the node's text preview. Frontend 1.58 clears every node's text preview of a
// job when the job ends, so the report of a finished run would vanish with it: the last report of each
// of the pack's nodes is kept and handed once more, after the job, to the frontend's own progress-text
// handler (the same event, no route or widget of the pack's own).
const REPORT_NODES = new Set([INJECT_NODE, "NoiseSemanticPreview"]);

function keepReports() {
  const last = new Map(); // execution id -> text, for the job running now
  api.addEventListener("progress_text", (e) => {
    const { nodeId, text, nsReplay } = e.detail ?? {};
    if (nsReplay || !nodeId || !text) return;
    const node = app.graph?.getNodeById?.(String(nodeId).split(":").pop());
    if (node && REPORT_NODES.has(node.type)) last.set(String(nodeId), text);
  });
  const replay = () => {
    const reports = [...last];
    last.clear();
    // after the frontend's own handlers of the same event (1.58's job reset runs there)
    setTimeout(() => {
      for (const [nodeId, text] of reports) api.dispatchCustomEvent("progress_text", { nodeId, text, nsReplay: true });
    }, 50);
  };
  for (const ev of ["execution_success", "execution_error", "execution_interrupted"]) api.addEventListener(ev, replay);
}

app.registerExtension({
  name: "noisesemantics.Reports",
  setup() {
    keepReports();
  },
});
