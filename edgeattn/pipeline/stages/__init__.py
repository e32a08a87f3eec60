"""The pipeline's stages, registered in `STAGES` in the order they run.

One module per stage; each plans its steps from the run state and imports its library function
lazily inside the step, so loading the pipeline (e.g. for `edgeattn recipe check`) stays cheap.
"""

from edgeattn.pipeline.stages import bench, export, prune, quantize, train, validate  # noqa: F401  (each registers itself with its order)
from edgeattn.pipeline.steps import STAGES, Stage


def ordered_stages() -> list[Stage]:
    """All registered stages in the order they run."""
    return sorted((STAGES.get(n) for n in STAGES.names()), key=lambda s: s.order)
