"""Published reference figures (ML.ENERGY Leaderboard v3), shipped with the package.

They give our numbers context on a plot; the method differs (steady-state
serving there, offline static batches here), so every view of them says so.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING

from llem_nb.errors import LlemError

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_FILE = "mlenergy_v3_chat.csv"
REFERENCE_LABEL = "ML.ENERGY v3 (published; different method)"
REFERENCE_CREDIT = (
    "Reference points: ML.ENERGY Leaderboard v3 (The ML.ENERGY Initiative, repository "
    "ml-energy/leaderboard), vLLM 0.11.1, GPU-only energy over the steady state of a serving "
    "run. A different method from llem_nb's offline static batches: a plausibility check, "
    "not a like-for-like comparison."
)


@functools.lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    import pandas as pd

    with resources.files("llem_nb.data").joinpath(REFERENCE_FILE).open("rb") as fh:
        return pd.read_csv(fh)


def load_reference(
    *,
    model: str | None = None,
    gpu: str | None = None,
    task: str | None = None,
    num_gpus: int | None = None,
) -> pd.DataFrame:
    """The published figures, filtered; ``model``/``gpu`` match case-insensitive substrings.

    Raises ``LlemError`` naming the known values when a filter matches nothing.
    """
    df = _table()
    filters = {"model_id": model, "gpu": gpu, "task": task}
    for column, wanted in filters.items():
        if wanted is None:
            continue
        hit = df[column].str.contains(wanted, case=False, regex=False)
        if not hit.any():
            known = ", ".join(sorted(_table()[column].unique()))
            raise LlemError(
                f"no published reference row has {column} matching {wanted!r}",
                fix=f"known {column} values: {known}",
            )
        df = df[hit]
    if num_gpus is not None:
        df = df[df["num_gpus"] == num_gpus]
    return df.reset_index(drop=True).copy()


def matching_gpu(gpu_names: list[str]) -> str | None:
    """The reference GPU (``H100``, ``B200``) named in any of ``gpu_names``, if one is."""
    for known in sorted(_table()["gpu"].unique()):
        if any(known.lower() in str(name).lower() for name in gpu_names):
            return str(known)
    return None
