"""The benchmark tasks behind one interface (see ``benchmarks/compositional/task.py`` for the
compositional one). A task gives models, prompts, conditioning, empty latents, a decoder, an
independent judge and features for diversity. Import after ComfyUI has booted (tests/host.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


class DigitsTask:
    """The shipped digits demo models (demo/models.py): one prompt = one digit class. The judge is
    a logistic regression on the real digits; 'all' = the prompted digit is read."""
    name = "digits"
    kinds = ("eps", "flow")
    sampler = {"eps": ("euler", "normal"), "flow": ("euler", "simple")}

    _judge = None  # (classifier, held-out accuracy): deterministic, so fitted once per process

    def __init__(self):
        sys.path.insert(0, str(ROOT / "demo"))
        import demo_nodes
        self.dm = demo_nodes.demo_models()
        if DigitsTask._judge is None:
            DigitsTask._judge = self.dm.train_classifier()
        self.clf, self.judge_acc = DigitsTask._judge
        self._emb = {}

    def load(self, kind):
        patcher, emb = self.dm.load(kind)
        self._emb[kind] = emb
        return patcher

    def prompts(self, split="all", n=None):
        return list(range(10))[:n]

    def conditioning(self, kind, prompts):
        return self.dm.conditioning(self._emb[kind], kind, list(prompts))

    def null_conditioning(self, kind, batch=1):
        return self.dm.conditioning(self._emb[kind], kind, [self.dm.NULL_CLASS] * batch)

    def empty_latent(self, kind, batch):
        return self.dm.empty_latent(kind, batch)

    def decode(self, kind, samples):
        patcher = self._patcher_for_decode(kind)
        px = self.dm.decode(patcher, samples)  # [B, 8, 8], ink 0..16
        return (px / 16.0).unsqueeze(1).repeat(1, 3, 1, 1)

    def _patcher_for_decode(self, kind):
        if not hasattr(self, "_dec"):
            self._dec = {}
        if kind not in self._dec:
            self._dec[kind] = self.dm.load(kind)[0]
        return self._dec[kind]

    def judge(self, images, prompts):
        pred, _ = self.dm.classify(self.clf, images[:, 0] * 16.0)
        ok = torch.as_tensor(pred) == torch.as_tensor(list(prompts))
        return {"all": ok, "digit": ok}

    def features(self, images):
        return images[:, 0].reshape(len(images), -1)

    def describe(self):
        return {"judge_heldout_acc": self.judge_acc, "prompts": 10}


def get_task(name: str):
    if name == "digits":
        return DigitsTask()
    if name == "compositional":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from compositional.task import CompositionalTask
        return CompositionalTask()
    raise ValueError(f"unknown task {name!r}: digits or compositional")
