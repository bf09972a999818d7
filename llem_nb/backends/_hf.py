"""Helpers for the Hugging Face backend: model lookup, GPU assignment, token counts, latencies.

Pure functions where possible, so they are tested without a model or a GPU.
Nothing here imports torch or transformers at module level.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llem_nb.backends._gpu_place import ordinal_for_nvml_index
from llem_nb.config.experiment import ExperimentConfig
from llem_nb.errors import ConfigError

MODEL_FIX = (
    "pass a local model directory (llem_nb.demo_model(), llem_nb.testing.tiny_model(dir)), "
    "or download the model first (`hf download ORG/NAME` with network access)"
)
CPU_FIX = "set gpus=0 to run on the CPU"
_CUDA_ORDINAL = re.compile(r"^cuda:(\d+)$")


def looks_like_path(name: str) -> bool:
    """A string the user meant as a filesystem path rather than a Hugging Face id."""
    return name.startswith(("/", "./", "../", "~", ".\\", "..\\")) or name.count("/") > 1


def _model_dir(path: Path, name: str) -> Path:
    if not path.is_dir():
        raise ConfigError(
            f"model path {name!r} is a file, not a model directory", field="model", fix=MODEL_FIX
        )
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model directory {name!r} has no config.json: it is not a transformers model",
            field="model",
            fix="point model at the directory save_pretrained wrote",
        )
    return path


def resolve_model(name: str) -> Path:
    """The local directory holding ``name``: an existing path or a snapshot in the HF cache."""
    path = Path(name).expanduser()
    if looks_like_path(name) or path.exists():
        if not path.exists():
            raise ConfigError(f"model path {name!r} does not exist", field="model", fix=MODEL_FIX)
        return _model_dir(path, name)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ConfigError(
            f"model {name!r} is not a local directory and huggingface_hub is not installed",
            field="model",
            fix="pip install 'llem_nb[pytorch]', or pass a local model directory",
        ) from exc
    try:
        snapshot = Path(snapshot_download(name, local_files_only=True))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"model {name!r} is neither a local directory nor in the local Hugging Face cache "
            f"({type(exc).__name__}); llem_nb never downloads models while measuring",
            field="model",
            fix=MODEL_FIX,
        ) from None
    return _model_dir(snapshot, name)


def cuda_visible() -> list[str] | None:
    """The entries of CUDA_VISIBLE_DEVICES, or None when it is unset."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def cuda_uuids(cuda: Any, count: int) -> list[str]:
    """UUIDs that ``cuda`` (``torch.cuda``) reports for ordinals 0..count-1, "" where unknown.

    [] when CUDA is not available. These match NVML's whatever ``CUDA_DEVICE_ORDER`` is.
    """
    if not cuda.is_available():
        return []
    out = []
    for ordinal in range(min(count, cuda.device_count())):
        uuid = getattr(cuda.get_device_properties(ordinal), "uuid", None)
        out.append(str(uuid) if uuid is not None else "")
    return out


def _plain_uuid(text: str) -> str:
    return text.lower().removeprefix("gpu-").removeprefix("mig-")


def _ordinal_of(
    item: int | str,
    device_count: int,
    visible: list[str] | None,
    uuids: Sequence[str],
    nvml_ids: Sequence[str] = (),
) -> int:
    text = str(item).strip()
    match = _CUDA_ORDINAL.match(text)
    if match:
        ordinal = int(match.group(1))
    elif text.isdigit() and nvml_ids and visible is None:
        ordinal = ordinal_for_nvml_index(int(text), nvml_ids, uuids)
    elif text.isdigit():
        if visible is not None and text not in visible:
            raise ConfigError(
                f"GPU {text} is not visible here (CUDA_VISIBLE_DEVICES={','.join(visible)})",
                field="gpus",
                fix="assign a GPU listed in CUDA_VISIBLE_DEVICES, or unset that variable",
            )
        ordinal = visible.index(text) if visible is not None else int(text)
    else:
        wanted = _plain_uuid(text)
        found = [i for i, u in enumerate(uuids) if _plain_uuid(u) == wanted]
        if not found:
            raise ConfigError(
                f"no visible GPU has UUID {text!r}", field="gpus", fix="check `nvidia-smi -L`"
            )
        ordinal = found[0]
    if ordinal >= device_count:
        raise ConfigError(
            f"GPU {text!r} is out of range: {device_count} visible", field="gpus", fix=CPU_FIX
        )
    return ordinal


def assigned_ordinals(
    gpus: Any,
    device_count: int,
    visible: list[str] | None = None,
    uuids: Sequence[str] = (),
    nvml_ids: Sequence[str] = (),
) -> list[int]:
    """Torch device ordinals for the ``gpus`` setting; [] means the CPU.

    ``"all"`` takes every visible device (none → CPU). An explicit count or list
    with no GPU present is an error rather than a silent CPU run. A list equal to
    CUDA_VISIBLE_DEVICES (a runner narrowed it) maps to ordinals 0..n-1; list
    entries are NVML indices, ``cuda:N`` ordinals or UUIDs. ``nvml_ids`` (NVML's UUIDs by
    index, given when CUDA's numbering is not the PCI order) maps an NVML index to its CUDA
    ordinal by UUID.
    """
    if gpus == "all":
        return list(range(device_count))
    if isinstance(gpus, int) and not isinstance(gpus, bool) and gpus == 0:
        return []
    if device_count == 0:
        raise ConfigError(
            f"gpus={gpus!r} asks for GPUs but torch sees no CUDA device", field="gpus", fix=CPU_FIX
        )
    if isinstance(gpus, int):
        if gpus > device_count:
            raise ConfigError(
                f"gpus={gpus} but only {device_count} GPU(s) are visible",
                field="gpus",
                fix=f"set gpus to at most {device_count}",
            )
        return list(range(gpus))
    names = [str(g).strip() for g in gpus]
    if visible is not None and sorted(visible) == sorted(names):
        return list(range(len(names)))
    return [_ordinal_of(item, device_count, visible, uuids, nvml_ids) for item in gpus]


def shape_batches(lengths: Sequence[int], batch_size: int) -> list[range]:
    """Static batches (prompt index ranges) with a (rows, padded length) shape no earlier
    batch had: what a compiled model must see once before the window, or it compiles
    inside it (other padded lengths, a smaller last batch)."""
    seen: set[tuple[int, int]] = set()
    out: list[range] = []
    for first in range(0, len(lengths), batch_size):
        rows = range(first, min(first + batch_size, len(lengths)))
        shape = (len(rows), max(lengths[i] for i in rows))
        if shape not in seen:
            seen.add(shape)
            out.append(rows)
    return out


def counted_tokens(rows: Sequence[Sequence[int]], eos_ids: Iterable[int]) -> list[int]:
    """Per row: generated tokens up to and including the first EOS, or all of them."""
    eos = set(eos_ids)
    counts: list[int] = []
    for row in rows:
        n = len(row)
        for i, token in enumerate(row):
            if token in eos:
                n = i + 1
                break
        counts.append(n)
    return counts


def step_times(stamps: Sequence[float], steps: int, end: float) -> list[float]:
    """One time per generated position; the last is ``end``, when generate's device work ended.

    Positions without a stamp (a stopping criterion skipped) get ``end`` too.
    """
    times = list(stamps[:steps]) + [end] * max(0, steps - len(stamps))
    if times:
        times[-1] = end
    return times


def request_latency(
    times: Sequence[float], start: float, n_tokens: int
) -> tuple[float, float, list[float]]:
    """(ttft_s, e2e_s, itl_s) of a request whose last counted token is number ``n_tokens``."""
    ttft = times[0] - start
    e2e = times[n_tokens - 1] - start
    itl = [later - earlier for earlier, later in itertools.pairwise(times[:n_tokens])]
    return ttft, e2e, itl


def generation_settings(config: ExperimentConfig) -> dict[str, Any]:
    """GenerationConfig fields for the experiment, every decoding knob set explicitly.

    The result replaces the model's own generation_config wholesale, so a model's
    defaults (sampling, n-gram bans, minimum lengths) never leak into the measurement;
    knobs left out here keep transformers' neutral defaults (explicit neutral values such
    as ``min_new_tokens=0`` would add per-step processors and slow every step). Greedy runs
    get neutral sampling knobs (ignored, and not warned about).
    ``repetition_penalty`` applies to greedy decoding too, as in vLLM.
    """
    d = config.decoder
    settings: dict[str, Any] = {
        "max_new_tokens": config.max_output_tokens,
        "num_beams": 1,
        "use_cache": config.pytorch.use_cache,
        "repetition_penalty": d.repetition_penalty,
        "do_sample": d.sampling,
    }
    if d.sampling:
        settings.update(temperature=d.temperature, top_k=d.top_k, top_p=d.top_p, min_p=0.0)
    else:
        settings.update(temperature=1.0, top_k=50, top_p=1.0)
    return settings


def parameter_counts(model: Any) -> dict[str, Any]:
    """Parameter counts of a torch ``PreTrainedModel``: total, embedding, the ones FLOPs use."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = head is not None and head.weight.data_ptr() == embedding.data_ptr()
    counted = total - embedding.numel() + (embedding.numel() if tied else 0)
    return {
        "parameters": int(total),
        "parameters_embedding": int(embedding.numel()),
        "tied_embeddings": bool(tied),
        "parameters_for_flops": int(counted),
    }
