"""Convert a ComfyUI UI workflow (the litegraph JSON the frontend saves and loads, version 0.4) into
the API prompt format (what the frontend POSTs to /prompt), using the LIVE node definitions:
``INPUT_TYPES()`` of ``nodes.NODE_CLASS_MAPPINGS`` after ``host.boot()``.

What the frontend does, and this module does the same way:

- widget inputs: the inputs (required, then optional, in definition order) whose type is a
  widget type (INT, FLOAT, STRING, BOOLEAN, a COMBO list or "COMBO") and that are not
  ``forceInput``. ``widgets_values`` holds one value per widget in that order, linked (converted)
  widgets included. A workflow saved by an older ComfyUI lacks the values of the widgets a node
  gained since: the frontend (LGraphNode.configure, 1.32 and 1.49 alike) assigns the saved values
  in order and leaves the widgets after them at their defaults (a COMBO without one: its first
  choice). Accepted here only where every widget left without a value is an optional input or a
  required one flagged ``advanced`` (hidden behind the node's advanced toggle): how ComfyUI extends
  a node compatibly, e.g. 0.33's CreateVideo ``bit_depth``, SaveVideo's hidden ``codec``,
  ImageScaleToTotalPixels' advanced ``resolution_steps``; anything else is a stale workflow;
- dynamic combos (V3 ``COMFY_DYNAMICCOMBO_V3``, ComfyUI 0.33): a COMBO of option keys, followed by
  the widgets of the chosen option's inputs, named ``<combo>.<input>`` (recursively; the
  frontend's dynamicComboWidget, and the names the backend expands);
- hidden extra values: an INT input named ``seed`` / ``noise_seed`` or flagged
  ``control_after_generate`` gets a "control after generate" widget right after it (value
  fixed / increment / decrement / randomize); so does a COMBO flagged ``control_after_generate``.
  A COMBO with an upload flag (``image_upload`` ...) is followed by its upload button's value.
  Those values never go to the API prompt;
- links: an input fed by a link becomes ``[origin_node_id, origin_slot]``; a linked widget input
  takes the link instead of its widget value;
- frontend-only nodes are not in the prompt: Note / MarkdownNote are dropped; a Reroute is
  followed to what feeds it; a PrimitiveNode's value is written into the widget input(s) it feeds;
- node modes: 0 always, 2 never (muted: dropped, with whatever it fed), 4 bypass (dropped; whatever
  it fed is fed by its input of the same type, the input at the same slot first).

``to_api(workflow)`` returns ``{node_id: {"class_type", "inputs", "_meta": {"title"}}}``.
``widget_specs(class_type)``, ``bind_widgets(node)`` and ``widget_values(node)`` expose the widget
mapping for checks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
NOTE_TYPES = {"Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"


class WorkflowError(ValueError):
    pass


@dataclass
class WidgetSpec:
    name: str
    type: str              # INT / FLOAT / STRING / BOOLEAN / COMBO
    options: dict
    choices: list | None = None    # COMBO choices
    extras: list = field(default_factory=list)  # names of hidden values stored after it
    optional: bool = False         # declared under "optional" (or inside an optional dynamic combo)
    dynamic: dict | None = None    # a dynamic combo's {option key: the inputs that option adds}

    def describe(self):
        return f"{self.name} ({self.type})"

    def default(self):
        """The value the frontend gives a new widget (None: it has none to give)."""
        if "default" in self.options:
            return self.options["default"]
        return self.choices[0] if self.type == "COMBO" and self.choices else None


def _nodes_module():
    import nodes  # ComfyUI's, after host.boot()
    return nodes


def input_types(class_type: str, nodes_module=None) -> dict:
    mapping = (nodes_module or _nodes_module()).NODE_CLASS_MAPPINGS
    if class_type not in mapping:
        raise WorkflowError(f"node type {class_type!r} is not registered in this ComfyUI")
    return mapping[class_type].INPUT_TYPES()


def return_types(class_type: str, nodes_module=None) -> list:
    mapping = (nodes_module or _nodes_module()).NODE_CLASS_MAPPINGS
    return [str(t) for t in mapping[class_type].RETURN_TYPES]


def _type_of(spec) -> tuple[str, dict, list | None]:
    """(type name, options, combo choices) of one INPUT_TYPES entry, V1 or V3-converted. A V3
    dynamic combo (ComfyUI 0.33's COMFY_DYNAMICCOMBO_V3) is a COMBO of its option keys."""
    raw = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(raw, (list, tuple)):
        return "COMBO", opts, list(raw)
    name = str(raw)
    if name == "COMBO":
        return "COMBO", opts, list(opts.get("options", []))
    if name == DYNAMIC_COMBO:
        return "COMBO", opts, [o["key"] for o in opts["options"]]
    return name, opts, None


def all_inputs(class_type: str, nodes_module=None) -> dict:
    """name -> (type, options, choices) for required and optional inputs, in order."""
    it = input_types(class_type, nodes_module)
    out = {}
    for section in ("required", "optional"):
        for name, spec in (it.get(section) or {}).items():
            out[name] = _type_of(spec)
    return out


def _specs(inputs: dict, prefix: str = "", optional_group: bool = False) -> list[WidgetSpec]:
    specs = []
    for section in ("required", "optional"):
        for name, spec in (inputs.get(section) or {}).items():
            typ, opts, choices = _type_of(spec)
            if typ not in WIDGET_TYPES or opts.get("forceInput"):
                continue
            w = WidgetSpec(prefix + name, typ, opts, choices, optional=optional_group or section == "optional")
            if str(spec[0]) == DYNAMIC_COMBO:
                w.dynamic = {o["key"]: o.get("inputs") or {} for o in opts["options"]}
            if typ == "INT" and opts.get("control_after_generate", name in ("seed", "noise_seed")):
                w.extras.append("control_after_generate")
            elif typ == "COMBO" and opts.get("control_after_generate"):
                w.extras.append("control_after_generate")
            if typ == "COMBO" and any(opts.get(f) for f in UPLOAD_FLAGS):
                w.extras.append("upload")
            specs.append(w)
    return specs


def widget_specs(class_type: str, nodes_module=None) -> list[WidgetSpec]:
    """The node's own widgets, in order (without what a dynamic combo adds for its chosen option)."""
    return _specs(input_types(class_type, nodes_module))


def _children(spec: WidgetSpec, value) -> list[WidgetSpec]:
    """The widgets a dynamic combo adds right after itself for the chosen option, named
    "<combo>.<input>" (the frontend's dynamicComboWidget; the backend expands the same names)."""
    if not spec.dynamic or value not in spec.dynamic:
        return []
    return _specs(spec.dynamic[value], spec.name + ".", spec.optional)


def bind_widgets(node: dict, nodes_module=None) -> list[tuple[WidgetSpec, object, dict]]:
    """[(spec, value, {extra name: hidden value})] for every widget of a UI node, in order, as the
    frontend assigns ``widgets_values`` on load. Raises WorkflowError when they do not fit the
    live definition."""
    specs = widget_specs(node["type"], nodes_module)
    values = node.get("widgets_values")
    if values is None:
        values = []
    if isinstance(values, dict):  # some nodes save a {name: value} map
        return [(s, values[s.name], {}) for s in specs if s.name in values]
    bound, i, k = [], 0, 0
    while k < len(specs):
        s = specs[k]
        newer = s.optional or s.options.get("advanced")
        if i == len(values) and newer and not s.extras and s.default() is not None:
            value, extras = s.default(), {}  # a widget newer than the workflow: its default
        elif i + 1 + len(s.extras) <= len(values):
            value, extras = values[i], dict(zip(s.extras, values[i + 1:i + 1 + len(s.extras)]))
            i += 1 + len(s.extras)
        else:
            break
        bound.append((s, value, extras))
        specs[k + 1:k + 1] = _children(s, value)
        k += 1
    if k == len(specs) and i == len(values):
        return bound
    layout = ", ".join(s.name + "".join(f" +{e}" for e in s.extras) + (" (optional)" if s.optional else "")
                       for s in specs)
    raise WorkflowError(
        f"node {node['id']} ({node['type']}): {len(values)} widgets_values {values!r}, but the live "
        f"definition has {sum(1 + len(s.extras) for s in specs)} widget value(s): [{layout}]")


def widget_values(node: dict, nodes_module=None) -> dict:
    """{widget name: value} of a UI node, plus {"<name>.control_after_generate": value} etc. for
    the hidden values. Raises WorkflowError when the count does not match the live definition."""
    out = {}
    for spec, value, extras in bind_widgets(node, nodes_module):
        out[spec.name] = value
        out.update((f"{spec.name}.{e}", v) for e, v in extras.items())
    return out


def _links_by_id(workflow: dict) -> dict:
    links = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):  # schema 1.0 style
            lid, o, os_, t, ts, typ = (link["id"], link["origin_id"], link["origin_slot"], link["target_id"],
                                       link["target_slot"], link.get("type"))
        else:
            lid, o, os_, t, ts, typ = link[:6]
        links[lid] = {"id": lid, "origin": o, "origin_slot": os_, "target": t, "target_slot": ts, "type": typ}
    return links


class _Graph:
    def __init__(self, workflow: dict):
        if workflow.get("definitions", {}).get("subgraphs"):
            raise WorkflowError("subgraphs are not supported by this converter")
        self.nodes = {n["id"]: n for n in workflow["nodes"]}
        self.links = _links_by_id(workflow)

    def input_link(self, node, slot_or_name):
        for i, inp in enumerate(node.get("inputs") or []):
            if i == slot_or_name or inp.get("name") == slot_or_name:
                lid = inp.get("link")
                return self.links.get(lid) if lid is not None else None
        return None

    def resolve(self, link, seen=()):
        """Follow a link upstream through Reroutes and bypassed nodes. Returns
        ("link", node_id, slot), ("value", v) for a PrimitiveNode, or None (nothing feeds it)."""
        if link is None:
            return None
        origin = self.nodes.get(link["origin"])
        if origin is None:
            raise WorkflowError(f"link {link['id']} starts at missing node {link['origin']}")
        if origin["id"] in seen:
            raise WorkflowError(f"cycle through node {origin['id']}")
        seen = seen + (origin["id"],)
        mode = origin.get("mode", MODE_ALWAYS)
        if mode == MODE_NEVER:
            return None
        typ = origin["type"]
        if typ == "Reroute":
            return self.resolve(self.input_link(origin, 0), seen)
        if typ == "PrimitiveNode":
            vals = origin.get("widgets_values") or []
            if not vals:
                raise WorkflowError(f"PrimitiveNode {origin['id']} has no value")
            return ("value", vals[0])
        if typ in NOTE_TYPES:
            raise WorkflowError(f"link {link['id']} starts at a {typ}")
        if mode == MODE_BYPASS:
            ins = origin.get("inputs") or []
            want = link["type"]
            slot = link["origin_slot"]
            order = ([slot] if slot < len(ins) else []) + [i for i in range(len(ins)) if i != slot]
            for i in order:
                inp = ins[i]
                if inp.get("link") is not None and (inp.get("type") == want or want == "*"):
                    return self.resolve(self.links.get(inp["link"]), seen)
            return None
        return ("link", str(origin["id"]), link["origin_slot"])


def to_api(workflow: dict, nodes_module=None) -> dict:
    """The API prompt the frontend would queue for this workflow."""
    g = _Graph(workflow)
    prompt = {}
    for nid, node in g.nodes.items():
        typ = node["type"]
        if typ in FRONTEND_ONLY or node.get("mode", MODE_ALWAYS) in (MODE_NEVER, MODE_BYPASS):
            continue
        defined = all_inputs(typ, nodes_module)
        inputs = {}
        widgets = {spec.name: value for spec, value, _ in bind_widgets(node, nodes_module)}
        inputs.update(widgets)
        for inp in node.get("inputs") or []:
            name = (inp.get("widget") or {}).get("name") or inp.get("name")
            if inp.get("link") is None:
                continue
            if name not in defined:
                raise WorkflowError(f"node {nid} ({typ}) has a link into {name!r}, which it does not define")
            src = g.resolve(g.links.get(inp["link"]))
            if src is None:  # fed by a muted node, or a bypassed one with nothing to pass on
                if name not in widgets:
                    inputs.pop(name, None)
                continue
            inputs[name] = src[1] if src[0] == "value" else [src[1], src[2]]
        prompt[str(nid)] = {"class_type": typ, "inputs": inputs,
                            "_meta": {"title": node.get("title") or typ}}
    # Every remaining link must point at a node that is in the prompt.
    for nid, entry in prompt.items():
        for name, v in list(entry["inputs"].items()):
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and v[0] not in prompt:
                raise WorkflowError(f"node {nid} input {name!r} links to node {v[0]}, which is not in the prompt")
    return prompt


def load(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
