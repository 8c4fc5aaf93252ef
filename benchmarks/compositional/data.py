"""Scenes of two coloured digits side by side, their prompts, and the seen / held-out split.

A scene is an 8x16 RGB image on black holding two objects, one per 8x8 half: a handwritten digit
(scikit-learn's ``load_digits``) tinted one of ``len(COLOURS)`` colours (pixel = ink x colour).
Its prompt names the two objects, four tokens "<colour_1> <digit_1> <colour_2> <digit_2>" ("a red
three and a blue seven"), a tuple ``(digit_1, colour_1, digit_2, colour_2)`` here. The prompt
does not say which object goes left. Training scenes put the first object on the left
(``P_FIRST_LEFT``; a free layout, a coin flip, was tried and was far too hard for these small
models: see docs/compositional.md); the judge accepts either arrangement.

The split holds out attribute *combinations*, never attribute values: every digit and every
colour is trained on as either object. A prompt is held out when

* its colour pair (colour_1, colour_2) is one of the held-out ordered pairs (two colours never
  seen together, like "a red cube and a green sphere" when the data never had that), or
* one of its two objects is a held-out (digit, colour) binding in that slot of the prompt (an
  unusual object, like "a blue banana").

The choice is a fixed, seeded draw; ``split_table()`` is the single source of truth.
Nothing here needs ComfyUI.
"""
from __future__ import annotations

import functools
import itertools

import torch

DIGITS = tuple(range(10))
# The six corners of the RGB cube that are neither black nor white: far apart, so the colour
# of an object can be read off its pixels without a learned model.
COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
           "yellow": (1.0, 1.0, 0.0), "magenta": (1.0, 0.0, 1.0), "cyan": (0.0, 1.0, 1.0)}
COLOUR_NAMES = tuple(COLOURS)
PALETTE = torch.tensor(list(COLOURS.values()))  # [K, 3]
ATTRIBUTES = ("digit_first", "colour_first", "digit_second", "colour_second")
HEIGHT, WIDTH = 8, 16

# Token ids of the frozen "text encoder" (models.py): digits, then colours, then the empty token.
N_TOKENS = len(DIGITS) + len(COLOURS) + 1
EMPTY_TOKEN = N_TOKENS - 1
PROMPT_LEN = 4

SPLIT_SEED = 2024
HELDOUT_COLOUR_PAIRS = 9       # of the 36 ordered colour pairs
HELDOUT_BINDINGS_PER_SLOT = 6  # of the 60 (digit, colour) objects, per prompt slot
P_SAME = 0.5  # share of training scenes whose two objects share a colour (TrainingScenes)
P_FIRST_LEFT = 1.0  # share of training scenes with the prompt's first object on the left (sizing: 0.5 was far too hard)


def tokens(prompts) -> torch.Tensor:
    """Prompts [(digit_1, colour_1, digit_2, colour_2), ...] -> token ids [B, 4], in reading
    order colour_1, digit_1, colour_2, digit_2; None -> the empty prompt."""
    rows = []
    for p in prompts:
        if p is None:
            rows.append([EMPTY_TOKEN] * PROMPT_LEN)
            continue
        dl, cl, dr, cr = check_prompt(p)
        rows.append([10 + cl, dl, 10 + cr, dr])
    return torch.tensor(rows, dtype=torch.long)


def check_prompt(p) -> tuple:
    try:
        dl, cl, dr, cr = (int(v) for v in p)
    except (TypeError, ValueError):
        raise ValueError(f"a compositional prompt is (digit_1, colour_1, digit_2, colour_2), got {p!r}") from None
    k = len(COLOURS)
    if not (0 <= dl <= 9 and 0 <= dr <= 9 and 0 <= cl < k and 0 <= cr < k):
        raise ValueError(f"prompt {p!r} out of range: digits 0..9, colours 0..{k - 1} ({', '.join(COLOUR_NAMES)})")
    return dl, cl, dr, cr


def describe_prompt(p) -> str:
    dl, cl, dr, cr = check_prompt(p)
    return f"{COLOUR_NAMES[cl]} {dl} and {COLOUR_NAMES[cr]} {dr}"


@functools.lru_cache(maxsize=None)
def split_table() -> dict:
    """The held-out colour pairs and (side, digit, colour) bindings, and every prompt by split."""
    g = torch.Generator().manual_seed(SPLIT_SEED)
    k = len(COLOURS)
    pairs = [(a, b) for a in range(k) for b in range(k)]
    held_pairs = {pairs[i] for i in torch.randperm(len(pairs), generator=g)[:HELDOUT_COLOUR_PAIRS].tolist()}
    objects = [(d, c) for d in DIGITS for c in range(k)]
    held_objects = {}
    for side in ("first", "second"):
        # Latin-square-like draw: no digit and no colour loses more than one binding per slot,
        # so every value stays common in training.
        order = torch.randperm(len(objects), generator=g).tolist()
        chosen, used_d, used_c = [], set(), set()
        for i in order:
            d, c = objects[i]
            if d in used_d or c in used_c:
                continue
            chosen.append((d, c))
            used_d.add(d)
            used_c.add(c)
            if len(chosen) == HELDOUT_BINDINGS_PER_SLOT:
                break
        held_objects[side] = set(chosen)
    seen, heldout = [], []
    for dl, cl, dr, cr in itertools.product(DIGITS, range(k), DIGITS, range(k)):
        out = (cl, cr) in held_pairs or (dl, cl) in held_objects["first"] or (dr, cr) in held_objects["second"]
        (heldout if out else seen).append((dl, cl, dr, cr))
    return {"heldout_colour_pairs": sorted(held_pairs), "heldout_first": sorted(held_objects["first"]),
            "heldout_second": sorted(held_objects["second"]), "seen": seen, "heldout": heldout}


def prompts(split: str, n: int | None = None, seed: int = 0) -> list:
    """Prompts of a split ("seen" = the training combinations, "heldout" = never trained on).
    n=None: all of them in canonical order; else a deterministic sample of n without
    replacement (seeded), so the first n of a run are the same every time."""
    if split not in ("seen", "heldout"):
        raise ValueError(f"split must be 'seen' or 'heldout', got {split!r}")
    allp = split_table()[split]
    if n is None:
        return list(allp)
    if not 0 < n <= len(allp):
        raise ValueError(f"n must be 1..{len(allp)} for split {split!r}, got {n}")
    g = torch.Generator().manual_seed(seed + (0 if split == "seen" else 1))
    return [allp[i] for i in torch.randperm(len(allp), generator=g)[:n].tolist()]


# --------------------------------------------------------------------------- glyphs and scenes

@functools.lru_cache(maxsize=None)
def glyphs() -> tuple:
    """(ink [N, 8, 8] in 0..1, labels [N], is_judge_test [N] bool): scikit-learn's digits, with a
    fixed stratified 25% reserved to measure the judge on glyphs it never saw."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    ink = torch.tensor(d.images, dtype=torch.float32) / 16.0
    labels = torch.tensor(d.target, dtype=torch.long)
    _, test_idx = train_test_split(range(len(labels)), test_size=0.25, random_state=0, stratify=d.target)
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[list(test_idx)] = True
    return ink, labels, is_test


def render(prompt_batch, generator: torch.Generator, pool: str = "all", swapped=None) -> torch.Tensor:
    """Real scenes for prompts: images [B, 3, 8, 16] in 0..1, a random glyph of each digit, the
    first object on the left or (``swapped``, a coin flip unless given) on the right.
    pool: "all" glyphs (training the diffusion models), "judge_train" or "judge_test"."""
    ink, labels, is_test = glyphs()
    mask = {"all": torch.ones_like(is_test), "judge_train": ~is_test, "judge_test": is_test}[pool]
    by_digit = [torch.nonzero(mask & (labels == d)).flatten() for d in DIGITS]
    p = torch.as_tensor([check_prompt(q) for q in prompt_batch], dtype=torch.long)
    if swapped is None:
        swapped = torch.rand(len(p), generator=generator) < 0.5
    swapped = torch.as_tensor(swapped, dtype=torch.bool).view(-1, 1, 1, 1)
    objs = []
    for dcol, ccol in ((0, 1), (2, 3)):
        idx = torch.stack([by_digit[d][torch.randint(len(by_digit[d]), (1,), generator=generator)][0]
                           for d in p[:, dcol].tolist()])
        objs.append(ink[idx].unsqueeze(1) * PALETTE[p[:, ccol]].view(-1, 3, 1, 1))
    left = torch.where(swapped, objs[1], objs[0])
    right = torch.where(swapped, objs[0], objs[1])
    return torch.cat([left, right], dim=3)


class TrainingScenes:
    """An endless seeded stream of (images, prompts) from the seen combinations, a fresh glyph
    each time. Biased like real data: with probability ``P_SAME`` the two objects share a colour
    (1/6 under uniform draws), otherwise uniform over the seen combinations. A model that leans
    on that prior paints both objects one colour when a prompt asks for an unusual pairing."""

    def __init__(self, seed: int, p_same: float | None = None, p_first_left: float | None = None):
        self.g = torch.Generator().manual_seed(seed)
        self.p_same = P_SAME if p_same is None else p_same
        self.p_first_left = P_FIRST_LEFT if p_first_left is None else p_first_left
        self.seen = split_table()["seen"]
        self.same = [p for p in self.seen if p[1] == p[3]]

    def batch(self, n: int):
        same = (torch.rand(n, generator=self.g) < self.p_same).tolist()
        ps = []
        for s in same:
            pool = self.same if s else self.seen
            ps.append(pool[int(torch.randint(len(pool), (1,), generator=self.g))])
        swapped = torch.rand(n, generator=self.g) >= self.p_first_left
        return render(ps, self.g, swapped=swapped), ps
