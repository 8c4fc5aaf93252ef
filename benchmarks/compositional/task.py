"""The compositional task as the experiment harness sees it (same interface as the digits task).

Boot ComfyUI first (``tests/host.py: boot()``); then

    task = CompositionalTask()
    model = task.load("eps")
    ps = task.prompts("heldout", 200)
    out = nodes.common_ksampler(model, seed, 20, cfg, *task.sampler["eps"], task.conditioning("eps", ps),
                                task.null_conditioning("eps", len(ps)),
                                {"samples": task.empty_latent("eps", len(ps)), "batch_index": list(range(len(ps)))})
    ok = task.judge(task.decode("eps", out[0]["samples"]), ps)["all"]

A prompt is a tuple (digit_1, colour_1, digit_2, colour_2) naming two objects (either may be drawn
left), colours indexing ``data.COLOUR_NAMES``; see docs/compositional.md.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import data, judge as judge_mod


class CompositionalTask:
    name = "compositional"
    kinds = ("eps", "flow")
    sampler = {"eps": ("euler", "normal"), "flow": ("euler", "simple")}
    attributes = data.ATTRIBUTES  # the per-attribute keys of judge(); it also returns the keys below
    error_keys = ("binding_swap", "colour_leak", "missing_object")  # judge() also gives "first_on_right" (layout)

    def __init__(self, weights_dir: Path | None = None):
        self.weights_dir = Path(weights_dir) if weights_dir else None
        self._loaded = {}
        judge_mod.digit_classifier()  # fit once (about a second), cached for the process

    def _models(self):
        from . import models  # needs a booted ComfyUI
        return models

    def _path(self, kind):
        m = self._models()
        return (self.weights_dir / m.WEIGHTS[kind].name) if self.weights_dir else m.WEIGHTS[kind]

    def _get(self, kind):
        if kind not in self.kinds:
            raise ValueError(f"CompositionalTask: kind must be one of {self.kinds}, got {kind!r}")
        if kind not in self._loaded:
            self._loaded[kind] = self._models().load(kind, self._path(kind))
        return self._loaded[kind]

    def load(self, kind):
        """A fresh ModelPatcher clone (float32, CPU) of the shipped model."""
        return self._get(kind)[0].clone()

    def prompts(self, split: str, n: int | None = None) -> list:
        return data.prompts(split, n)

    def conditioning(self, kind, prompts: list) -> list:
        if not prompts or any(p is None for p in prompts):
            raise ValueError("CompositionalTask.conditioning: give one (digit_1, colour_1, digit_2, colour_2) per "
                             "image; use null_conditioning for the empty prompt")
        return self._models().conditioning(self._get(kind)[1], kind, prompts)

    def null_conditioning(self, kind, batch: int = 1) -> list:
        return self._models().conditioning(self._get(kind)[1], kind, [None] * batch)

    def empty_latent(self, kind, batch: int) -> torch.Tensor:
        return self._models().empty_latent(kind, batch)

    def decode(self, kind, samples: torch.Tensor) -> torch.Tensor:
        return self._models().decode(self._get(kind)[0], samples, kind)

    def judge(self, images, prompts) -> dict:
        return judge_mod.judge(images, prompts)

    def features(self, images) -> torch.Tensor:
        return images.float().reshape(len(images), -1)

    def describe(self) -> dict:
        t = data.split_table()
        out = {
            "name": self.name, "image": [3, data.HEIGHT, data.WIDTH],
            "digits": len(data.DIGITS), "colours": list(data.COLOUR_NAMES),
            "prompt": "tokens colour_1 digit_1 colour_2 digit_2; tuple (digit_1, colour_1, digit_2, colour_2); trained with the first object left, judged in either layout",
            "combinations": len(t["seen"]) + len(t["heldout"]), "seen": len(t["seen"]), "heldout": len(t["heldout"]),
            "heldout_rule": {"colour_pairs": t["heldout_colour_pairs"], "first_objects": t["heldout_first"],
                             "second_objects": t["heldout_second"]},
            "judge_accuracy_real_heldout_scenes": judge_mod.accuracy(),
            "sampler": self.sampler,
        }
        for kind in self.kinds:
            try:
                patcher, _ = self._get(kind)
            except FileNotFoundError as e:
                out[kind] = {"error": str(e)}
                continue
            m = patcher.model
            out[kind] = {"comfy_class": type(m.model_config).__name__, "latent": list(self._models().latent_shape(kind)),
                         "arch": m.comp_arch, "recipe": m.comp_info}
        return out
