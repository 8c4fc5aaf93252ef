"""One configuration = one batched KSampler run through ComfyUI's real sampling code
(``nodes.common_ksampler``, what the KSampler node runs), with the model patched by the pack's real
node classes. Every prompt starts from the same N noises (``batch_index`` 0..N-1), so methods are
compared on identical noises, and noises are the bootstrap's units."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch


@dataclass(frozen=True)
class Config:
    cfg: float
    erase: int = 1                # Noise Semantic Erase samples (1 = off)
    inject: float = 0.0           # Noise Semantic Inject strength
    direction: str = "guided"
    candidates: int = 1           # noise screening (1 = off)
    schedule: tuple = ()          # Temporal Weight Schedule overrides, as sorted (name, value) pairs
    decorrelate: bool = True
    steps: int = 0                # 0 = the runner's default

    @property
    def refined(self) -> bool:
        return self.erase > 1 or self.inject > 0 or self.candidates > 1

    def _parts(self, knobs: bool) -> list:
        parts = []
        if self.erase > 1:
            parts.append(f"erase n={self.erase}" if knobs else "erase")
        if self.candidates > 1:
            parts.append(f"screen m={self.candidates}" if knobs else "screen")
        if self.inject > 0:
            parts.append(f"inject {self.direction}" + (f" {self.inject:g}" if knobs else "")
                         + ("" if self.decorrelate else " raw"))
        if self.schedule and (self.inject > 0 or self.candidates > 1):
            parts.append("(" + ", ".join(f"{k}={v}" for k, v in self.schedule) + ")")
        if self.steps:
            parts.append(f"{self.steps} steps")
        return parts

    def method(self) -> str:
        """Everything but cfg."""
        return " ".join(self._parts(True)) or "stock"

    def family(self) -> str:
        """The method with its main knob (strength, or the number of candidates) left out: the
        points of one family over that knob and cfg form its frontier."""
        return " + ".join(self._parts(False)) or "stock"

    def label(self) -> str:
        return f"{self.method()} @ cfg {self.cfg:g}"


def sched(**kw) -> tuple:
    return tuple(sorted(kw.items()))


class EvalCounter:
    """unet function wrapper: counts latents through the network (one per latent per call, so
    CFG costs two per step) and network calls, the sampler's and the probes' alike."""

    def __init__(self):
        self.latents = 0
        self.calls = 0

    def __call__(self, apply_model, args):
        self.latents += int(args["input"].shape[0])
        self.calls += 1
        return apply_model(args["input"], args["timestep"], **args["c"])

    def __deepcopy__(self, memo):
        return self  # ModelPatcher.clone deep-copies model_options: keep counting here


def node_defaults(nodes, node_id: str) -> dict:
    spec = nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    return {k: v[1]["default"] for sec in ("required", "optional") for k, v in spec.get(sec, {}).items()
            if len(v) > 1 and isinstance(v[1], dict) and "default" in v[1]}


def apply_node(nodes, node_id: str, **inputs):
    """Runs one of the pack's node classes as ComfyUI would (V1: FUNCTION; V3: execute) and
    returns its first output."""
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    if hasattr(cls, "execute") and not hasattr(cls, "FUNCTION"):
        out = cls.execute(**inputs)
        return (out.result if hasattr(out, "result") else out)[0]
    fn = getattr(cls, "FUNCTION")
    return getattr(cls(), fn)(**inputs)[0]


@dataclass
class Run:
    config: Config
    ok: dict                  # attribute -> bool tensor [P, N]
    div: torch.Tensor         # [P, N]: mean distance of each image to the other images of its prompt
    evals: float              # network evaluations per image
    wall: float
    extra: dict = field(default_factory=dict)

    def summary(self, rows=None) -> dict:
        sel = slice(None) if rows is None else rows
        out = {k: float(v[sel].float().mean()) for k, v in self.ok.items()}
        out["diversity"] = float(self.div[sel].mean())
        out["evals"] = self.evals
        return out


class Runner:
    def __init__(self, nodes, task, kind: str, noises: int, steps: int, seed: int, prompts: list,
                 splits: dict | None = None, keep_images: bool = False):
        self.keep_images = keep_images
        self.nodes, self.task, self.kind, self.N, self.steps, self.seed = nodes, task, kind, noises, steps, seed
        self.prompts = prompts
        self.splits = splits or {"all": list(range(len(prompts)))}
        self.base = task.load(kind)
        self.counter = EvalCounter()
        self.base.set_model_unet_function_wrapper(self.counter)
        P = len(prompts)
        self.flat_prompts = [p for p in prompts for _ in range(noises)]
        self.pos = task.conditioning(kind, self.flat_prompts)
        self.neg = task.null_conditioning(kind, 1)
        self.defaults = {nid: node_defaults(nodes, nid) for nid in
                         ("NoiseSemanticErase", "NoiseSemanticInject", "NoiseSemanticTemporalSchedule")}
        self.P = P
        self.cache = {}

    def model_for(self, c: Config):
        m = self.base
        if c.erase > 1:
            m = apply_node(self.nodes, "NoiseSemanticErase", **(self.defaults["NoiseSemanticErase"]
                                                                  | {"model": m, "samples": c.erase}))
        if c.inject > 0 or c.candidates > 1:
            kw = self.defaults["NoiseSemanticInject"] | {"model": m, "strength": c.inject, "direction": c.direction,
                                                         "candidates": c.candidates, "decorrelate": c.decorrelate}
            # Always a Temporal Weight Schedule node: an empty Config.schedule means that node at its
            # defaults (the paper's five probes), whatever Inject does when nothing is connected.
            kw["schedule"] = apply_node(self.nodes, "NoiseSemanticTemporalSchedule",
                                        **(self.defaults["NoiseSemanticTemporalSchedule"] | dict(c.schedule)))
            m = apply_node(self.nodes, "NoiseSemanticInject", **kw)
        return m

    def run(self, c: Config) -> Run:
        if c in self.cache:
            return self.cache[c]
        model = self.model_for(c)
        B = self.P * self.N
        latent = {"samples": self.task.empty_latent(self.kind, B), "batch_index": list(range(self.N)) * self.P}
        sampler, scheduler = self.task.sampler[self.kind]
        self.counter.latents = 0
        t0 = time.perf_counter()
        out = self.nodes.common_ksampler(model, self.seed, c.steps or self.steps, c.cfg, sampler, scheduler,
                                         self.pos, self.neg, latent)[0]["samples"]
        wall = time.perf_counter() - t0
        images = self.task.decode(self.kind, out)
        judged = self.task.judge(images, self.flat_prompts)
        ok = {k: torch.as_tensor(v).bool().reshape(self.P, self.N) for k, v in judged.items()}
        feats = self.task.features(images).float().reshape(self.P, self.N, -1)
        div = torch.stack([torch.cdist(f, f).sum(1) / max(self.N - 1, 1) for f in feats])
        r = Run(c, ok, div, self.counter.latents / B, wall)
        if self.keep_images:
            r.extra["images"] = images.reshape((self.P, self.N) + tuple(images.shape[1:]))
        self.cache[c] = r
        return r


def to_json(run: Run, splits: dict) -> dict:
    return {"config": asdict(run.config), "method": run.config.method(), "label": run.config.label(),
            "evals": run.evals, "wall_s": round(run.wall, 2),
            "summary": {name: run.summary(rows) for name, rows in splits.items()},
            "ok": {k: v.int().tolist() for k, v in run.ok.items()},
            "div": [[round(float(x), 5) for x in row] for row in run.div]}


def from_json(d: dict) -> Run:
    """A Run rebuilt from its saved record (``to_json``), to re-analyse without sampling again."""
    c = dict(d["config"])
    c["schedule"] = tuple(tuple(x) for x in c["schedule"])
    return Run(Config(**c), {k: torch.tensor(v).bool() for k, v in d["ok"].items()}, torch.tensor(d["div"]),
               d["evals"], d["wall_s"])
