"""Bad measurement settings fail at validation, naming the field; carbon stays out of the hash."""

from __future__ import annotations

from typing import Any

import pytest

from llem_nb.config.experiment import validate_experiment
from llem_nb.errors import ConfigError


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"baseline": {"seconds": -1}}, "baseline.seconds"),
        ({"baseline": {"seconds": float("inf")}}, "baseline.seconds"),
        ({"energy": {"poll_interval_s": 0.0009}}, "energy.poll_interval_s"),
        ({"carbon": {"grid_gco2_per_kwh": -0.1}}, "carbon.grid_gco2_per_kwh"),
        ({"carbon": {"pue": 0.99}}, "carbon.pue"),
        ({"warmup": {"cv_threshold": 0}}, "warmup.cv_threshold"),
        ({"warmup": {"window": 1}}, "warmup.window"),
        ({"warmup": {"mode": "adaptive"}}, "warmup.mode"),
        ({"warmup": {"mode": "cv", "window": 8, "max_runs": 4}}, "warmup"),
        ({"cooldown": {"until_within_c": -2}}, "cooldown.until_within_c"),
        ({"cooldown": {"max_s": -1}}, "cooldown.max_s"),
        ({"cooldown": {"untill_within_c": 5}}, "cooldown.untill_within_c"),
    ],
)
def test_bad_measurement_settings(section: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_experiment({"model": "m", **section})
    assert info.value.field == field
    assert field in str(info.value)


def test_limits_themselves_are_valid() -> None:
    config = validate_experiment(
        {
            "model": "m",
            "baseline": {"seconds": 0},
            "energy": {"poll_interval_s": 0.001},
            "carbon": {"grid_gco2_per_kwh": 0, "pue": 1.0},
            "warmup": {"mode": "cv", "window": 2, "max_runs": 2},
            "cooldown": {"until_within_c": 0, "max_s": 0},
        }
    )
    assert config.warmup.mode == "cv" and config.cooldown.until_within_c == 0


def test_carbon_does_not_change_the_hash_but_cooldown_does() -> None:
    plain = validate_experiment({"model": "m"})
    carbon = validate_experiment({"model": "m", "carbon": {"grid_gco2_per_kwh": 350}})
    cooled = validate_experiment({"model": "m", "cooldown": {"until_within_c": 5}})
    assert plain.config_hash == carbon.config_hash
    assert plain.config_hash != cooled.config_hash


def test_reuse_settings_do_not_change_the_hash() -> None:
    """How long a baseline may be kept and how short a re-warm is decide what a reusing study
    may skip, not what is measured: hashes (and so resume and dedup) are unchanged by them."""
    plain = validate_experiment({"model": "m"})
    tuned = validate_experiment(
        {"model": "m", "baseline": {"max_age_s": 0}, "warmup": {"rewarm_tokens": 64}}
    )
    assert plain.config_hash == tuned.config_hash
    assert "max_age_s" not in plain.measurement_dict()["baseline"]
    assert "rewarm_tokens" not in plain.measurement_dict()["warmup"]
    longer = validate_experiment({"model": "m", "baseline": {"seconds": 10}})
    assert longer.config_hash != plain.config_hash
    assert plain.baseline.max_age_s == 300.0 and plain.warmup.rewarm_tokens == 8
    with pytest.raises(ConfigError, match="max_age_s"):
        validate_experiment({"model": "m", "baseline": {"max_age_s": -1}})


def test_study_reuse_is_auto_or_never() -> None:
    from llem_nb.study.study import Study

    study = Study("r", model="m")
    assert study.config.reuse == "auto" and study.reuse("never").config.reuse == "never"
    assert study.config.reuse == "auto"  # the builder returned a new study
    with pytest.raises(ConfigError, match="reuse"):
        study.reuse("sometimes")  # type: ignore[arg-type]
    text = study.reuse("never").to_yaml()
    assert "reuse: never" in text and Study.from_dict(
        {"name": "r", "base": {"model": "m"}, "reuse": "never"}
    ).config == study.reuse("never").config


def test_did_you_mean_for_new_sections() -> None:
    with pytest.raises(ConfigError, match="did you mean 'carbon.grid_gco2_per_kwh'"):
        validate_experiment({"model": "m", "carbon": {"grid_gco2_kwh": 300}})
