"""Fuzz study definitions: any dict, YAML text or builder call is valid or a ConfigError
with a message, never another exception; a valid study expands and round-trips through YAML.

Found and fixed so far: a sweep over ``backend`` with an unhashable value crashed ``expand``
(TypeError); dotted keys in a YAML ``base`` were accepted but made every point invalid; an
empty key was reported as ``unknown key 'StudyConfig'``.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llem_nb.config.experiment import canonical_json
from llem_nb.config.study import StudyConfig, expand
from llem_nb.errors import ConfigError
from llem_nb.study.study import Study

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=2)
    ),
    max_leaves=6,
)
floats = st.one_of(st.floats(-2, 100), st.sampled_from([0.0, math.nan, math.inf, -math.inf]))
ints = st.one_of(st.integers(-2, 64), st.integers(-(2**70), 2**70))
FIELD_VALUES: dict[str, Any] = {
    "model": st.sampled_from(["m", "org/name", "", "./local"]),
    "backend": st.sampled_from(["pytorch", "vllm", "fake", "pytorh", "PYTORCH"]),
    "precision": st.sampled_from(["fp32", "fp16", "bf16", "int8"]),
    "n_prompts": ints,
    "dataset": st.sampled_from(["builtin", "x.jsonl", ""]),
    "max_input_tokens": ints,
    "max_output_tokens": ints,
    "batch_size": ints,
    "gpus": st.one_of(
        st.sampled_from(["all", 0, 1, 2, -1, "none", True]),
        st.lists(st.one_of(st.integers(-1, 3), st.sampled_from(["GPU-ab", "0"])), max_size=3),
    ),
    "timeout_s": st.one_of(st.none(), floats),
    "decoder.temperature": floats,
    "decoder.do_sample": st.one_of(st.none(), st.booleans()),
    "decoder.top_k": ints,
    "decoder.top_p": floats,
    "decoder.repetition_penalty": floats,
    "decoder.seed": ints,
    "warmup.runs": ints,
    "baseline.seconds": floats,
    "energy.source": st.sampled_from(["auto", "nvml", "rapl", "estimate", "none", "joules"]),
    "energy.poll_interval_s": floats,
    "energy.cpu_w_per_core": floats,
    "pytorch.attn_implementation": st.sampled_from([None, "eager", "sdpa", "flash"]),
    "pytorch.torch_compile": st.booleans(),
    "pytorch.num_threads": st.one_of(st.none(), ints),
    "pytorch.batch_size": ints,
    "vllm.batch_size": ints,
    "vllm.engine.max_num_seqs": ints,
    "vllm.engine.tensor_parallel_size": ints,
    "vllm.engine.gpu_memory_utilization": floats,
    "vllm.engine.enforce_eager": st.booleans(),
    "vllm.engine.custom_arg": scalars,
    "vllm.engine.max_num_seq": ints,
    "vllm.sampling.n": ints,
    "vllm.sampling.min_tokens": ints,
    "decoder__temperature": floats,
    "decodr.temperature": floats,
    "": scalars,
    "a..b": scalars,
    "pytorch.": scalars,
}
FIELDS = sorted(FIELD_VALUES)


def sometimes(strategy: Any, rate: int = 8) -> Any:
    """``strategy`` most of the time, garbage one time in ``rate``."""
    return st.integers(0, rate - 1).flatmap(lambda k: garbage if k == 0 else strategy)


def field_value(key: str) -> Any:
    """Plausible values for ``key``, garbage one time in six."""
    return sometimes(FIELD_VALUES[key], 6) if key in FIELD_VALUES else garbage


def _nest(flat: dict[str, Any], dotted: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if dotted or "." not in key.strip("."):
            out[key] = value
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            node = child if isinstance(child, dict) else {}
        node[leaf] = value
    return out


@st.composite
def field_dicts(draw: Any, max_size: int = 4) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(FIELDS), max_size=max_size, unique=True))
    flat = {name: draw(field_value(name)) for name in names}
    return _nest(flat, dotted=draw(st.booleans()))


@st.composite
def sweep_dicts(draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True))
    out: dict[str, Any] = {}
    for name in names:
        out[name] = draw(
            st.one_of(st.lists(field_value(name), min_size=0, max_size=3), garbage)
            if draw(st.integers(0, 9)) == 0
            else st.lists(field_value(name), min_size=1, max_size=3)
        )
    return out


study_dicts = st.fixed_dictionaries(
    {"name": sometimes(st.sampled_from(["s", "my-study_1.v2"]), 10)},
    optional={
        "base": sometimes(field_dicts().map(lambda d: {"model": "m", "backend": "pytorch", **d})),
        "sweep": sometimes(sweep_dicts()),
        "experiments": sometimes(st.lists(field_dicts(3), max_size=2)),
        "cycles": sometimes(
            st.fixed_dictionaries(
                {},
                optional={
                    "n": st.integers(-1, 4),
                    "order": st.sampled_from(["sequential", "interleaved", "shuffled", "x"]),
                    "seed": ints,
                },
            )
        ),
        "runners": sometimes(
            st.dictionaries(
                st.sampled_from(["pytorch", "vllm", "fake", "nope"]),
                st.sampled_from(["local", "subprocess", "docker:img", "ray", "teleport"]),
                max_size=2,
            )
        ),
        "gap_seconds": sometimes(floats),
        "cooldown": sometimes(
            st.fixed_dictionaries(
                {},
                optional={
                    "until_within_c": st.one_of(st.none(), floats),
                    "max_s": floats,
                    "idle_c": st.one_of(st.none(), floats),
                    "poll_s": floats,
                },
            )
        ),
    },
).flatmap(
    lambda d: st.integers(0, 15).flatmap(
        lambda k: (
            st.dictionaries(st.text(max_size=6), garbage, min_size=1, max_size=1).map(
                lambda extra: {**extra, **d}
            )
            if k == 0
            else st.just(d)
        )
    )
)
flat_fields = field_dicts()
sweeps = sweep_dicts()

FUZZ = settings(
    max_examples=900,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
    derandomize=True,
)
"""900 + 800 + 400 examples per run, the same ones every run (CI must not flake); ~30 s."""


def _check_config_error(exc: ConfigError) -> None:
    assert isinstance(exc.message, str) and exc.message.strip()
    assert str(exc)


def _exercise(config: StudyConfig) -> None:
    """A valid study expands (invalid points keep a reason) and survives a YAML round trip."""
    points, invalid = expand(config)
    assert all(bad.reason for bad in invalid)
    for point in points:
        assert len(point.config.config_hash) == 64
    again = StudyConfig.from_yaml_text(config.to_yaml_text())
    assert canonical_json(again.model_dump(mode="json")) == canonical_json(
        config.model_dump(mode="json")
    )


def _load(data: Any) -> None:
    try:
        config = StudyConfig.load(data)
    except ConfigError as exc:
        _check_config_error(exc)
        return
    _exercise(config)
    try:
        Study.from_config(config)
    except ConfigError as exc:
        _check_config_error(exc)


@FUZZ
@given(study_dicts)
def test_study_dicts_are_valid_or_config_errors(data: dict[str, Any]) -> None:
    _load(data)


def _mutate(text: str, edits: list[tuple[int, str]]) -> str:
    for position, chunk in edits:
        at = position % (len(text) + 1)
        text = text[:at] + chunk + text[at + len(chunk) // 2 :]
    return text


yaml_texts = st.one_of(
    st.text(max_size=60),
    st.builds(
        _mutate,
        study_dicts.map(lambda d: yaml.safe_dump(_json_safe(d), sort_keys=False)),
        st.lists(
            st.tuples(
                st.integers(0, 10**4),
                st.sampled_from([":", "- ", "\n  ", "{", "]", "&a", "*a", "!!python/object", "'"]),
            ),
            max_size=3,
        ),
    ),
)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


@settings(FUZZ, max_examples=800)
@given(yaml_texts)
def test_yaml_texts_are_valid_or_config_errors(text: str) -> None:
    try:
        config = StudyConfig.from_yaml_text(text)
    except ConfigError as exc:
        _check_config_error(exc)
        return
    _exercise(config)


@settings(FUZZ, max_examples=400)
@given(st.sampled_from(["s", "bad name"]), flat_fields, sweeps, garbage)
def test_builder_calls_are_valid_or_config_errors(
    name: str, base: dict[str, Any], axes: dict[str, Any], cycles: Any
) -> None:
    try:
        study = Study(name, **{str(k): v for k, v in base.items()}).sweep(axes)
        study = study.cycles(cycles)
    except ConfigError as exc:
        _check_config_error(exc)
        return
    _exercise(study.config)


def test_dotted_keys_in_a_yaml_base_mean_nested_fields() -> None:
    config = StudyConfig.from_yaml_text(
        "name: s\nbase:\n  model: m\n  decoder.temperature: 0.5\n  decoder__seed: 3\n"
    )
    assert config.base == {"model": "m", "decoder": {"temperature": 0.5, "seed": 3}}
    points, invalid = expand(config)
    assert invalid == [] and points[0].config.decoder.temperature == 0.5


def test_an_empty_key_is_named_as_such() -> None:
    try:
        StudyConfig.load({"name": "s", "": 1})
    except ConfigError as exc:
        assert "unknown key ''" in exc.message and exc.field == ""
    else:
        raise AssertionError("an empty key must be refused")
