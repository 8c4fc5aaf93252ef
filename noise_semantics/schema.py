"""What the node schemas share: their menu category and the wire type of a schedule."""
from comfy_api.latest import io

from . import core

CATEGORY = "sampling/noise semantics"
# A custom socket type: only a Temporal Weight Schedule output connects to Inject's schedule input.
Schedule = io.Custom(core.SCHEDULE_TYPE)
