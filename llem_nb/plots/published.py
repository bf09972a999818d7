"""Our energy per output token next to the published ML.ENERGY Leaderboard v3 figures.

``reference(df, model=...)`` draws both, matched by model and by batch (our
``batch_size``, the requests in flight, against their ``avg_batch``, the mean number of
running sequences in the steady state) or by concurrency (against their vLLM
``max_num_seqs``), and states on the figure how the two methods differ.
``match_reference`` returns the same pairing as a table. Facts on what their columns
mean come from the leaderboard's build script and benchmark code (``llem_nb/data``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from llem_nb.errors import LlemError
from llem_nb.plots.base import (
    estimated,
    finish,
    group_keys,
    interval,
    label,
    log_axis,
    new_axes,
    style,
    usable,
)
from llem_nb.results.reference import REFERENCE_LABEL, load_reference, matching_gpu

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GROSS = "energy_per_output_token_j"
PUBLISHED_J = "J_per_output_token"
By = Literal["batch", "concurrency"]
PUBLISHED_X: dict[str, tuple[str, str]] = {
    "batch": ("avg_batch", "their mean running batch (avg_batch)"),
    "concurrency": ("max_num_seqs", "their vLLM max_num_seqs"),
}
THEIR_METHOD = (
    "Published: ML.ENERGY Leaderboard v3, a vLLM 0.11.1 server under continuous batching "
    "with every request sent at once; GPU energy (NVML counter, summed over the server's "
    "GPUs) over the steady-state window only, divided by the output tokens of that window."
)
_SERIES_COLOURS = ("#555555", "#999999", "#777777", "#bbbbbb")


def model_name(model: Any) -> str:
    """``org/Some-Model`` or ``/path/to/Some-Model/`` → ``Some-Model``."""
    text = str(model or "").rstrip("/\\").replace("\\", "/")
    return text.rsplit("/", 1)[-1]


def _published_models(df: pd.DataFrame, model: str | None, task: str) -> list[str]:
    """The published model ids to compare with: ``model`` as given, or ours by name."""
    table = load_reference(task=task)
    known = sorted(table["model_id"].unique())
    if model is not None:
        ids = sorted(load_reference(model=model, task=task)["model_id"].unique())
        exact = [i for i in ids if model.lower() in (i.lower(), model_name(i).lower())]
        if len(ids) > 1 and not exact:
            raise LlemError(
                f"reference: model={model!r} matches {len(ids)} published models: {ids}",
                fix="give one of them in full",
            )
        return exact or ids
    ours = sorted({model_name(m) for m in df["model"].dropna().unique()}) if "model" in df else []
    wanted = {name.lower() for name in ours}
    ids = [i for i in known if model_name(i).lower() in wanted]
    if not ids:
        raise LlemError(
            f"reference: no published ML.ENERGY figures for {ours or 'these results'} "
            f"(task {task!r})",
            fix="pass model= one of the published models to compare with it anyway: "
            + ", ".join(known),
        )
    return ids


def published_rows(
    df: pd.DataFrame,
    model: str | None = None,
    *,
    task: str = "lm-arena-chat",
    gpu: str | None = None,
    num_gpus: int | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The published rows our results are compared with, and how they were chosen.

    Model: ``model`` (a case-insensitive part of the id) or ours by name. GPU: ``gpu``,
    else the one our ``gpu_name`` names (H100, B200), else all. GPU count: ``num_gpus``,
    else our ``gpu_count`` where published, else each model's smallest.
    """
    ids = _published_models(df, model, task)
    table = load_reference(task=task)
    pub = table[table["model_id"].isin(ids)]
    notes: list[str] = []
    names = [str(n) for n in df["gpu_name"].dropna().unique()] if "gpu_name" in df else []
    wanted_gpu = gpu or matching_gpu(names)
    if wanted_gpu:
        on_gpu = pub[pub["gpu"].str.contains(wanted_gpu, case=False, regex=False)]
        if on_gpu.empty:
            notes.append(f"no published rows on {wanted_gpu}: every published GPU shown")
        else:
            pub = on_gpu
    counts = df["gpu_count"].dropna() if "gpu_count" in df else None
    ours_count = int(counts.mode().iloc[0]) if counts is not None and len(counts) else 0
    wanted_count = num_gpus or (ours_count if ours_count >= 1 else None)
    if wanted_count and (pub["num_gpus"] == wanted_count).any():
        pub = pub[pub["num_gpus"] == wanted_count]
    else:
        smallest = pub.groupby("model_id")["num_gpus"].transform("min")
        pub = pub[pub["num_gpus"] == smallest]
        if wanted_count:
            notes.append(
                f"no published rows on {wanted_count} GPU(s): each model's smallest server shown"
            )
    return pub.reset_index(drop=True), notes


def size_b(name: Any) -> float | None:
    """Parameters in billions from a model name (``SmolLM2-135M`` → 0.135, ``Qwen3-8B`` → 8);
    a mixture's total (``235B-A22B`` → 235)."""
    hit = re.search(r"(?<![A-Za-z\d.])(\d+(?:\.\d+)?)([MB])(?![A-Za-z])", model_name(name))
    if hit is None:
        return None
    return float(hit.group(1)) * (1e-3 if hit.group(2) == "M" else 1.0)


def comparable_reference(df: pd.DataFrame, task: str = "lm-arena-chat") -> tuple[pd.DataFrame, str]:
    """Published rows comparable with ours when our model was not published, and which.

    On our GPU class (H100, B200) when we ran on one, else on every published GPU; of
    those, the one model nearest ours in size (log scale), on one GPU.
    """
    table = load_reference(task=task)
    table = table[table["num_gpus"] == 1]
    names = [str(n) for n in df["gpu_name"].dropna().unique()] if "gpu_name" in df else []
    gpu = matching_gpu(names)
    if gpu:
        table = table[table["gpu"] == gpu]
    ours = (
        [s for s in (size_b(m) for m in df["model"].dropna().unique()) if s]
        if "model" in df
        else []
    )
    sizes = {m: size_b(m) for m in table["model_id"].unique()}
    known = {m: v for m, v in sizes.items() if v}
    if ours and known:
        target = math.log(sum(ours) / len(ours))
        nearest = min(known, key=lambda m: (abs(math.log(known[m]) - target), m))
        size = f"{model_name(nearest)}, {known[nearest]:g} B parameters"
        why = f"the published model nearest ours in size ({size})"
    else:
        nearest = min(known, key=lambda m: (known[m], m)) if known else sorted(sizes)[0]
        why = (
            f"the smallest published model ({model_name(nearest)}; "
            "our model's size is not in its name)"
        )
    where = (
        f"on the same GPU class ({gpu})"
        if gpu
        else "on every published GPU (ours is not one of them)"
    )
    return table[table["model_id"] == nearest].reset_index(drop=True), f"{why}, {where}"


def _our_configs(df: pd.DataFrame) -> pd.DataFrame:
    """Per model × backend × precision × batch size: mean and 95 % interval of our gross
    energy per output token; estimated rows apart from measured ones (``estimate``),
    never averaged together."""
    from llem_nb.results.stats import summarize  # noqa: PLC0415 - keeps published light (numpy)

    data = usable(df, ["batch_size", GROSS], "reference")
    keys = [k for k in ("model", "backend", "precision") if k in data.columns]
    data = data.assign(estimate=estimated(data))
    stats = summarize(data, by=[*keys, "estimate", "batch_size"], metrics=[GROSS])
    return stats.dropna(subset=[f"{GROSS}_mean"])


def match_reference(
    df: pd.DataFrame,
    model: str | None = None,
    *,
    by: By = "batch",
    task: str = "lm-arena-chat",
    gpu: str | None = None,
    num_gpus: int | None = None,
    tolerance: float = 0.1,
) -> pd.DataFrame:
    """Our configurations paired with the published row at the same batch (``by="batch"``:
    their ``avg_batch``) or concurrency (``by="concurrency"``: their ``max_num_seqs``),
    within ``tolerance`` (relative) of our ``batch_size``.

    One row per our configuration × published series (model, GPU, GPU count, precision)
    that has a match; ``ratio`` = ours / published. Configurations with no match at all
    are kept, with the published columns empty.
    """
    import numpy as np
    import pandas as pd

    if by not in PUBLISHED_X:
        raise LlemError(f"reference: by={by!r}", fix="use by='batch' or by='concurrency'")
    x_pub = PUBLISHED_X[by][0]
    ours = _our_configs(df)
    pub, _ = published_rows(df, model, task=task, gpu=gpu, num_gpus=num_gpus)
    series = pub.groupby(["model_id", "gpu", "num_gpus", "precision"], sort=True)
    rows: list[dict[str, Any]] = []
    for _, config in ours.iterrows():
        batch = float(config["batch_size"])
        ours_j = float(config[f"{GROSS}_mean"])
        mine: dict[str, Any] = {
            "model": config.get("model"), "backend": config.get("backend"),
            "precision": config.get("precision"), "batch_size": int(batch),
            "n": int(config[f"{GROSS}_n"]), "ours_j": ours_j,
            "ours_ci95_low": float(config[f"{GROSS}_ci95_low"]),
            "ours_ci95_high": float(config[f"{GROSS}_ci95_high"]),
            "estimate": bool(config["estimate"]),
        }  # fmt: skip
        found = False
        for (model_id, gpu_name, count, precision), part in series:
            gaps = (part[x_pub].astype(float) - batch).abs() / batch
            if gaps.min() > tolerance:
                continue
            hit = part.iloc[int(gaps.to_numpy().argmin())]
            found = True
            rows.append(
                {
                    **mine, "published_model": model_id, "gpu": gpu_name,
                    "num_gpus": int(str(count)), "published_precision": precision,
                    f"published_{x_pub}": float(hit[x_pub]),
                    "published_j": float(hit[PUBLISHED_J]),
                    "ratio": ours_j / float(hit[PUBLISHED_J]),
                }
            )  # fmt: skip
        if not found:
            rows.append({**mine, "ratio": np.nan})
    columns = [
        "model", "backend", "precision", "batch_size", "n", "ours_j", "ours_ci95_low",
        "ours_ci95_high", "estimate", "published_model", "gpu", "num_gpus",
        "published_precision", f"published_{x_pub}", "published_j", "ratio",
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _our_method(data: pd.DataFrame) -> str:
    def values(column: str) -> str:
        if column not in data.columns:
            return "unknown"
        return ", ".join(sorted({str(v) for v in data[column].dropna().unique()})) or "unknown"

    batching = values("batching") if "batching" in data.columns else "static"
    return (
        f"Ours: {values('backend')}, {batching} batches, the whole window from the first "
        "request's submission to the last token (prefill and decode), divided by every output "
        f"token; energy source: {values('energy_source')}; GPU: {values('gpu_name')}."
    )


def method_note(data: pd.DataFrame, pub: pd.DataFrame, by: By, notes: list[str]) -> str:
    """What the figure compares and how the two methods differ, in a few lines."""
    ours_models = sorted({model_name(m) for m in data["model"].dropna().unique()})
    theirs = sorted({model_name(m) for m in pub["model_id"].unique()})
    lines = [THEIR_METHOD, _our_method(data)]
    x_text = f"x: our batch_size (requests in flight) against {PUBLISHED_X[by][1]}."
    if {m.lower() for m in ours_models} != {m.lower() for m in theirs}:
        x_text += f" Models differ: ours {', '.join(ours_models)}; published {', '.join(theirs)}."
    lines.append(x_text)
    lines.extend(notes)
    lines.append(
        "Different methods: read the published points as a plausibility check, "
        "not a like-for-like comparison."
    )
    return "\n".join(lines)


def reference(
    df: pd.DataFrame,
    model: str | None = None,
    *,
    by: By = "batch",
    task: str = "lm-arena-chat",
    gpu: str | None = None,
    num_gpus: int | None = None,
    tolerance: float = 0.1,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Figure:
    """Our energy per output token (mean, 95 % interval) against batch, next to the
    published ML.ENERGY v3 figures of ``model`` (default: ours, matched by name).

    Published series are grey dashed lines with hollow diamonds, one per GPU × GPU count ×
    precision; where one sits at our batch size (``tolerance``), a dotted line joins the
    two and gives ours ÷ published. The method difference is written under the axes.
    ``kwargs`` go to our series' ``Axes.errorbar``. Raises ``LlemError`` naming the
    published models when ``model`` matches none (or ours has no published figures).
    """
    data = usable(df, ["batch_size", GROSS], "reference")
    pairs = match_reference(
        data, model, by=by, task=task, gpu=gpu, num_gpus=num_gpus, tolerance=tolerance
    )
    pub, notes = published_rows(data, model, task=task, gpu=gpu, num_gpus=num_gpus)
    x_pub = PUBLISHED_X[by][0]
    fig, axes = new_axes(ax, figsize=(7.2, 5.0))
    ours = _our_configs(data)
    keys = [k for k in group_keys(ours, "model") if k in ours.columns]
    for key, group in ours.groupby([*keys, "estimate"], sort=True, observed=True):
        *parts, hollow = key
        name = "ours: " + " / ".join(model_name(p) for p in parts)
        group = group.sort_values("batch_size")
        base = {"marker": "o", "capsize": 3, "label": name + (" (estimate)" if hollow else "")}
        if hollow:
            base["markerfacecolor"] = "none"
        axes.errorbar(
            group["batch_size"].astype(float), group[f"{GROSS}_mean"],
            yerr=interval(group, GROSS), zorder=3, **style(base, kwargs),
        )  # fmt: skip
    for i, ((model_id, gpu_name, count, precision), part) in enumerate(
        pub.groupby(["model_id", "gpu", "num_gpus", "precision"], sort=True)
    ):
        part = part.sort_values(x_pub)
        axes.plot(
            part[x_pub], part[PUBLISHED_J], linestyle="--", marker="D", markersize=5,
            markerfacecolor="none", color=_SERIES_COLOURS[i % len(_SERIES_COLOURS)],
            linewidth=1.0, zorder=2,
            label=f"{REFERENCE_LABEL}: {model_name(model_id)}, {count}× {gpu_name}, {precision}",
        )  # fmt: skip
    matched = pairs.dropna(subset=["published_j"])
    for _, pair in matched.iterrows():
        axes.plot(
            [pair["batch_size"]] * 2, [pair["ours_j"], pair["published_j"]],
            linestyle=":", color="#888", linewidth=0.9, zorder=1,
        )  # fmt: skip
    for batch, group in matched.groupby("batch_size", sort=True):
        text = "ours ÷ " + ", ".join(f"{p['gpu']} = {p['ratio']:.2g}" for _, p in group.iterrows())
        axes.annotate(
            text, (float(batch), float(group["published_j"].min())),  # type: ignore[arg-type]
            textcoords="offset points", xytext=(4, -10), fontsize=7, color="#555",
        )  # fmt: skip
    log_axis(axes, "x")
    log_axis(axes, "y", base=10)
    axes.set_xlabel(f"requests in flight (ours: batch_size; published: {x_pub})")
    axes.set_ylabel(label(GROSS))
    if not axes.get_title():
        axes.set_title("Energy per output token: ours and published (ML.ENERGY v3)", fontsize=10)
    axes.text(
        0.0, -0.16, method_note(data, pub, by, notes), transform=axes.transAxes, fontsize=7,
        color="#444", va="top", ha="left", wrap=True,
    )  # fmt: skip
    finish(axes)
    return fig


def overlay_published(
    axes: Axes,
    data: pd.DataFrame,
    reference: bool | Mapping[str, Any],
    *,
    x_col: str,
    what: str,
    ok: bool,
) -> None:
    """Published points, hollow and grey, on their own legend entry (``ok``: the axes fit).

    ``reference=True``: the published models that share our models' names, else the one
    nearest ours in size on our GPU class (``comparable_reference``); a mapping:
    ``load_reference``'s filters.
    """
    if not ok:
        raise LlemError(
            f"published reference points exist for energy per output token only, not {what}",
            fix="drop reference= or plot the default columns",
        )
    if isinstance(reference, Mapping):
        ref = load_reference(**reference)
    else:
        try:
            ref, _ = published_rows(data)
        except LlemError:
            ref, _ = comparable_reference(data)
    axes.scatter(
        ref[x_col], ref[PUBLISHED_J], marker="D", s=22, facecolors="none", edgecolors="#888",
        linewidths=0.9, label=f"{REFERENCE_LABEL}, x = {x_col}", zorder=1,
    )  # fmt: skip
