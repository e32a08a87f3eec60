"""Heat maps of what a model looks at: Grad-CAM (grad-cam package), attention maps, rollout.

`METHODS` holds the methods, `CAM_FAMILIES` each family's default layer and token-to-image reshape;
importing this package registers them all.
"""

from edgeattn.explain import families, methods  # noqa: F401  (each registers itself)
from edgeattn.explain.config import ExplainConfig
from edgeattn.explain.core import ExplainReport, explain_checkpoint

__all__ = ["ExplainConfig", "ExplainReport", "explain_checkpoint"]
