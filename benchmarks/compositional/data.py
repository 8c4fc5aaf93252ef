"""Scenes of two coloured digits side by side, their prompts, and the seen / held-out split.

A scene is an 8x16 RGB image on black: a handwritten 8x8 digit (scikit-learn's ``load_digits``)
in the left half and another in the right half, each tinted one of ``len(COLOURS)`` colours
(pixel = ink x colour). Its prompt is four tokens, "<colour_L> <digit_L> <colour_R> <digit_R>"
("a red three and a blue seven"), a tuple ``(digit_L, colour_L, digit_R, colour_R)`` here.

The split holds out attribute *combinations*, never attribute values: every digit and every
colour appears on both sides in training. A prompt is held out when

* its colour pair (colour_L, colour_R) is one of the held-out ordered pairs (a colour pairing
  never seen together, like "a red cube next to a green sphere" when the data never had that), or
* one of its two objects is a held-out (digit, colour) binding on that side (an unusual object,
  like "a blue banana").

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
ATTRIBUTES = ("digit_left", "colour_left", "digit_right", "colour_right")
HEIGHT, WIDTH = 8, 16

# Token ids of the frozen "text encoder" (models.py): digits, then colours, then the empty token.
N_TOKENS = len(DIGITS) + len(COLOURS) + 1
EMPTY_TOKEN = N_TOKENS - 1
PROMPT_LEN = 4

SPLIT_SEED = 2024
HELDOUT_COLOUR_PAIRS = int(__import__("os").environ.get("COMP_PAIRS", "9"))       # of the 36 ordered colour pairs
HELDOUT_BINDINGS_PER_SIDE = 6  # of the 60 (digit, colour) objects, per side


def tokens(prompts) -> torch.Tensor:
    """Prompts [(digit_L, colour_L, digit_R, colour_R), ...] -> token ids [B, 4], in reading
    order colour_L, digit_L, colour_R, digit_R; None -> the empty prompt."""
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
        raise ValueError(f"a compositional prompt is (digit_L, colour_L, digit_R, colour_R), got {p!r}") from None
    k = len(COLOURS)
    if not (0 <= dl <= 9 and 0 <= dr <= 9 and 0 <= cl < k and 0 <= cr < k):
        raise ValueError(f"prompt {p!r} out of range: digits 0..9, colours 0..{k - 1} ({', '.join(COLOUR_NAMES)})")
    return dl, cl, dr, cr


def describe_prompt(p) -> str:
    dl, cl, dr, cr = check_prompt(p)
    return f"{COLOUR_NAMES[cl]} {dl} | {COLOUR_NAMES[cr]} {dr}"


@functools.lru_cache(maxsize=None)
def split_table() -> dict:
    """The held-out colour pairs and (side, digit, colour) bindings, and every prompt by split."""
    g = torch.Generator().manual_seed(SPLIT_SEED)
    k = len(COLOURS)
    pairs = [(a, b) for a in range(k) for b in range(k)]
    held_pairs = {pairs[i] for i in torch.randperm(len(pairs), generator=g)[:HELDOUT_COLOUR_PAIRS].tolist()}
    objects = [(d, c) for d in DIGITS for c in range(k)]
    held_objects = {}
    for side in ("left", "right"):
        # Latin-square-like draw: no digit and no colour loses more than one binding per side,
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
            if len(chosen) == HELDOUT_BINDINGS_PER_SIDE:
                break
        held_objects[side] = set(chosen)
    seen, heldout = [], []
    for dl, cl, dr, cr in itertools.product(DIGITS, range(k), DIGITS, range(k)):
        out = (cl, cr) in held_pairs or (dl, cl) in held_objects["left"] or (dr, cr) in held_objects["right"]
        (heldout if out else seen).append((dl, cl, dr, cr))
    return {"heldout_colour_pairs": sorted(held_pairs), "heldout_left": sorted(held_objects["left"]),
            "heldout_right": sorted(held_objects["right"]), "seen": seen, "heldout": heldout}


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


def render(prompt_batch, generator: torch.Generator, pool: str = "all") -> torch.Tensor:
    """Real scenes for prompts: images [B, 3, 8, 16] in 0..1, a random glyph of each digit.
    pool: "all" glyphs (training the diffusion models), "judge_train" or "judge_test"."""
    ink, labels, is_test = glyphs()
    mask = {"all": torch.ones_like(is_test), "judge_train": ~is_test, "judge_test": is_test}[pool]
    by_digit = [torch.nonzero(mask & (labels == d)).flatten() for d in DIGITS]
    p = torch.as_tensor([check_prompt(q) for q in prompt_batch], dtype=torch.long)
    out = torch.zeros(len(p), 3, HEIGHT, WIDTH)
    for side, (dcol, ccol) in enumerate(((0, 1), (2, 3))):
        idx = torch.stack([by_digit[d][torch.randint(len(by_digit[d]), (1,), generator=generator)][0]
                           for d in p[:, dcol].tolist()])
        out[:, :, :, 8 * side:8 * side + 8] = ink[idx].unsqueeze(1) * PALETTE[p[:, ccol]].view(-1, 3, 1, 1)
    return out


class TrainingScenes:
    """An endless seeded stream of (images, prompts) drawn uniformly from the seen combinations,
    with a fresh glyph each time."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)
        self.seen = split_table()["seen"]

    def batch(self, n: int):
        idx = torch.randint(len(self.seen), (n,), generator=self.g).tolist()
        ps = [self.seen[i] for i in idx]
        return render(ps, self.g), ps
