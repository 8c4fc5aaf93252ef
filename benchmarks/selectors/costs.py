"""Extra network evaluations per candidate of each score (no ComfyUI import)."""


def cost(name: str) -> int:
    """Network evaluations one candidate costs for score ``name`` (2 per probe or step under CFG)."""
    if name.startswith("look"):
        k = int(name[4])
        return 2 * (k + 1) + (2 if name.endswith("_dc") else 0)
    if name.startswith("final"):
        return 40 + 2
    if name.startswith("dc@"):
        return 4
    if name.startswith("attn"):
        return 2
    if name == "conflict_mean":
        return 10
    if name == "agree":
        return 4
    return 2
