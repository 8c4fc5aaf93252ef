"""The independent judge: reads each half of a scene, without the diffusion models.

* digit: an RBF support-vector classifier trained on real scikit-learn digits only (the 75% of
  glyphs not reserved for measuring it), applied to each half's ink, ink = max over R, G, B. All
  palette colours have a channel at 1, so ink is the glyph whatever its colour: colour-blind.
* colour: every inked pixel (ink > 0.25) votes, weighted by its ink, for the palette colour
  nearest to its chromaticity (rgb / max(rgb)); the half's colour is the winner.
* a half with almost no ink (total < MIN_INK, a real glyph has ~15-25) holds no object: both of
  its attributes fail.

Accuracy on real scenes built from the reserved glyphs: ``accuracy()``.
"""
from __future__ import annotations

import functools

import torch

from . import data

INK_PIXEL = 0.25
MIN_INK = 4.0


@functools.lru_cache(maxsize=None)
def digit_classifier():
    from sklearn.svm import SVC
    ink, labels, is_test = data.glyphs()
    X = ink[~is_test].reshape(-1, 64).numpy()
    return SVC(C=10.0, gamma="scale").fit(X, labels[~is_test].numpy())


def read_half(half: torch.Tensor) -> tuple:
    """half [B, 3, 8, 8] in 0..1 -> (digit [B], colour [B], present [B]); -1 where absent."""
    ink = half.max(1).values  # [B, 8, 8]
    digit = torch.as_tensor(digit_classifier().predict(ink.reshape(len(half), -1).double().numpy()), dtype=torch.long)
    chroma = half / half.max(1, keepdim=True).values.clamp_min(1e-6)  # [B, 3, 8, 8]
    d = ((chroma.unsqueeze(1) - data.PALETTE.view(1, -1, 3, 1, 1)) ** 2).sum(2)  # [B, K, 8, 8]
    nearest = d.argmin(1)  # [B, 8, 8]
    w = ink * (ink > INK_PIXEL)
    votes = torch.zeros(len(half), len(data.PALETTE))
    votes.scatter_add_(1, nearest.reshape(len(half), -1), w.reshape(len(half), -1))
    colour = votes.argmax(1)
    present = ink.sum((1, 2)) >= MIN_INK
    digit = torch.where(present, digit, torch.full_like(digit, -1))
    colour = torch.where(present, colour, torch.full_like(colour, -1))
    return digit, colour, present


def read(images: torch.Tensor) -> dict:
    """images [B, 3, 8, 16] -> what the judge sees in each half."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, data.HEIGHT, data.WIDTH):
        raise ValueError(f"judge expects images [B, 3, {data.HEIGHT}, {data.WIDTH}], got {tuple(images.shape)}")
    images = images.float().clamp(0, 1)
    dl, cl, pl = read_half(images[..., :8])
    dr, cr, pr = read_half(images[..., 8:])
    return {"digit_left": dl, "colour_left": cl, "digit_right": dr, "colour_right": cr,
            "present_left": pl, "present_right": pr}


def judge(images: torch.Tensor, prompts) -> dict:
    """Per image, against the prompt's two objects (first, second), wherever the model put them:
    the half showing the first object is the one whose digit matches it (ties: the arrangement
    matching more attributes; then first = left). Keys: each attribute right, "all" right, and
    the failure kinds: "binding_swap": both colours present but exchanged between the two
    objects (a blue 3 and a red 7 for "red 3, blue 7"); "colour_leak": both objects painted one
    of the two prompted colours when the prompt asked for two; "missing_object": a half (nearly)
    empty, or one of two different prompted digits drawn nowhere."""
    seen = read(images)
    p = torch.as_tensor([data.check_prompt(q) for q in prompts], dtype=torch.long)
    if len(p) != len(images):
        raise ValueError(f"judge got {len(images)} images for {len(prompts)} prompts")
    d1, c1, d2, c2 = p.unbind(1)
    dl, cl, dr, cr = seen["digit_left"], seen["colour_left"], seen["digit_right"], seen["colour_right"]

    def score(da, ca, db, cb):  # first object in half a, second in half b
        return (da == d1).int() + (db == d2).int(), (ca == c1).int() + (cb == c2).int()

    sd_straight, sc_straight = score(dl, cl, dr, cr)
    sd_swapped, sc_swapped = score(dr, cr, dl, cl)
    swapped = (sd_swapped > sd_straight) | ((sd_swapped == sd_straight) & (sc_swapped > sc_straight))
    first_d, first_c = torch.where(swapped, dr, dl), torch.where(swapped, cr, cl)
    second_d, second_c = torch.where(swapped, dl, dr), torch.where(swapped, cl, cr)
    out = {"digit_first": first_d == d1, "colour_first": first_c == c1,
           "digit_second": second_d == d2, "colour_second": second_c == c2}
    out["all"] = torch.stack([out[k] for k in data.ATTRIBUTES]).all(0)
    two_colours = c1 != c2
    out["binding_swap"] = two_colours & (first_c == c2) & (second_c == c1)
    out["colour_leak"] = two_colours & (cl == cr) & ((cl == c1) | (cl == c2))
    absent = lambda d: (dl != d) & (dr != d)  # noqa: E731
    out["missing_object"] = ~(seen["present_left"] & seen["present_right"]) | ((d1 != d2) & (absent(d1) | absent(d2)))
    out["first_on_right"] = swapped
    return out


def accuracy(n: int = 2000, seed: int = 0) -> dict:
    """Per-attribute accuracy on real scenes of held-out prompts drawn from the glyphs the
    classifier never saw."""
    g = torch.Generator().manual_seed(seed)
    allp = data.split_table()["heldout"]
    ps = [allp[i] for i in torch.randint(len(allp), (n,), generator=g).tolist()]
    res = judge(data.render(ps, g, pool="judge_test"), ps)
    return {k: round(float(res[k].float().mean()), 4) for k in (*data.ATTRIBUTES, "all")} | {"n": n}
