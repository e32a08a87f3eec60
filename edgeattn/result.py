"""The base of every stage's typed result (`TrainResult`, `EvalResult`, `PruneReport`, ...).

Results are pydantic models so that the CLI renders fields (not dict keys), `--json` writes
`to_dict()`, and the pipeline's step cache reads a stored result back into the same type
(`model_validate`) that a fresh run returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StageResult(BaseModel):
    """A stage's result: typed fields, JSON out (`to_dict`), JSON back in (`model_validate`)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
