"""compare(): Welch's t-test by hand, the ratio's log-scale interval, the sentence, refusals."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llem_nb as ll
from llem_nb.errors import ConfigError, ResultError
from llem_nb.results.stats import t_quantile, welch
from tests.support.results_data import result, sweep, write

A = [30.0, 32.0, 31.0, 29.0, 33.0]  # joules per 100 output tokens → 0.30 … 0.33 J/token
B = [15.0, 14.0, 16.0, 15.5, 14.5]


@pytest.fixture
def frame(tmp_path: Path) -> pd.DataFrame:
    return ll.load_results(sweep(tmp_path, {1: A, 4: B, 8: [15.0]}))


def hand_welch(a: list[float], b: list[float]) -> tuple[float, float]:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1) / len(a)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return (mb - ma) / math.sqrt(va + vb), dof


def test_welch_matches_the_hand_formula_with_and_without_scipy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = [x / 100 for x in A], [x / 100 for x in B]
    t, dof = hand_welch(a, b)
    with_scipy = welch(a, b)
    monkeypatch.setitem(sys.modules, "scipy", None)  # as on a laptop without scipy
    ours = welch(a, b)
    assert ours[3] == "Welch's t-test (llem_nb's Student-t)"
    for got in (with_scipy, ours):
        assert got[0] == pytest.approx(t) and got[1] == pytest.approx(dof)
    assert ours[2] == pytest.approx(with_scipy[2], rel=1e-6)
    assert 0 < ours[2] < 1e-4


def test_compare_gives_the_ratio_its_interval_and_a_sentence(frame: pd.DataFrame) -> None:
    c = ll.compare(frame, a="batch_size=1", b={"batch_size": 4})
    a, b = np.array(A) / 100, np.array(B) / 100
    ratio = b.mean() / a.mean()
    ua, ub = a.var(ddof=1) / (5 * a.mean() ** 2), b.var(ddof=1) / (5 * b.mean() ** 2)
    dof = (ua + ub) ** 2 / (ua**2 / 4 + ub**2 / 4)
    half = t_quantile(0.95, dof) * math.sqrt(ua + ub)
    assert c.ratio == pytest.approx(ratio)
    assert (c.ratio_low, c.ratio_high) == pytest.approx(
        (ratio * math.exp(-half), ratio * math.exp(half))
    )
    assert c.change_pct == pytest.approx((ratio - 1) * 100)
    assert c.significant and c.p_value < 1e-4 and (c.n_a, c.n_b) == (5, 5)
    assert c.sentence.startswith(
        f"batch_size=4 uses {abs(c.change_pct):.0f} % ± {c.change_pct_pm:.1f} % less energy "
        "per output token than batch_size=1"
    )
    assert c.sentence.endswith("n = 5 cycles each.") and c.caveats == ()
    assert str(c) == c.sentence and c.to_dict()["ratio"] == c.ratio
    assert "B / A" in c._repr_html_()


def test_b_over_a_and_a_over_b_are_inverse(frame: pd.DataFrame) -> None:
    ab = ll.compare(frame, a="batch_size=1", b="batch_size=4")
    ba = ll.compare(frame, a="batch_size=4", b="batch_size=1")
    assert ab.ratio * ba.ratio == pytest.approx(1.0)
    assert ab.ratio_low * ba.ratio_high == pytest.approx(1.0)
    assert "more energy" in ba.sentence and ba.p_value == pytest.approx(ab.p_value)


def test_not_significant_is_said(tmp_path: Path) -> None:
    df = ll.load_results(sweep(tmp_path, {1: [10.0, 14.0, 12.0], 2: [11.0, 13.0, 12.5]}))
    c = ll.compare(df, a="batch_size=1", b="batch_size=2", metric="energy_per_output_token_j")
    assert not c.significant
    assert c.sentence.startswith("batch_size=2 and batch_size=1 do not differ significantly")


def test_other_metrics_read_naturally(tmp_path: Path) -> None:
    rows = [
        result({"batch_size": b}, cycle, window_s=w, ttft_ms_p90=t)
        for b, ws, ts in ((1, (10.0, 11.0, 10.5), (100.0, 110.0, 105.0)),
                          (4, (5.0, 5.5, 5.2), (300.0, 320.0, 310.0)))
        for cycle, (w, t) in enumerate(zip(ws, ts, strict=True))
    ]  # fmt: skip
    df = ll.load_results(write(tmp_path, rows))
    faster = ll.compare(df, "batch_size=1", "batch_size=4", metric="throughput_output_tok_s")
    assert "higher output throughput than batch_size=1" in faster.sentence
    slower = ll.compare(df, "batch_size=1", "batch_size=4", metric="ttft_ms_p90")
    assert "higher p90 TTFT than batch_size=1" in slower.sentence


def test_flags_and_estimates_are_named_as_caveats(tmp_path: Path) -> None:
    rows = [
        result({"batch_size": 1}, c, energy_gross_j=e, flags=["short_window"], energy_source="estimate")
        for c, e in enumerate((10.0, 11.0))
    ] + [result({"batch_size": 2}, c, energy_gross_j=e) for c, e in enumerate((8.0, 8.5))]
    c = ll.compare(ll.load_results(write(tmp_path, rows)), "batch_size=1", "batch_size=2")
    assert c.caveats == (
        "batch_size=1: rows flagged short_window",
        "batch_size=1: energy from estimate, not a measurement",
    )
    assert c.sentence.endswith("Caveats: " + "; ".join(c.caveats) + ".")


def test_shared_caveats_are_said_once_and_wide_intervals_spelled_out(tmp_path: Path) -> None:
    rows = [
        result({"batch_size": b}, c, energy_gross_j=e, flags=["energy_estimated"],
               energy_source="estimate")
        for b, energies in ((1, (10.0, 30.0, 20.0)), (2, (8.0, 9.0, 25.0)))
        for c, e in enumerate(energies)
    ]  # fmt: skip
    c = ll.compare(ll.load_results(write(tmp_path, rows)), "batch_size=1", "batch_size=2")
    assert c.caveats == (
        "rows flagged energy_estimated (both)",
        "energy from estimate, not a measurement (both)",
    )
    low, high = (c.ratio_low - 1) * 100, (c.ratio_high - 1) * 100
    assert low < 0 < high and high - c.change_pct > 1.5 * (c.change_pct - low)  # skewed
    span = f"(95 % interval: {-low:.0f} % less to {high:.0f} % more; Welch's t-test"
    assert span in c.sentence, c.sentence


def test_refusals_name_the_problem(frame: pd.DataFrame) -> None:
    with pytest.raises(ResultError, match="1 successful cycle") as info:
        ll.compare(frame, "batch_size=1", "batch_size=8")
    assert "cycles(3)" in str(info.value)
    with pytest.raises(ConfigError, match="matches no row") as miss:
        ll.compare(frame, "batch_size=3", "batch_size=1")
    assert "batch_size=1" in str(miss.value)  # the fix lists the labels there are
    with pytest.raises(ConfigError, match="matches 3 configs"):
        ll.compare(frame, {"model": "tiny-llama"}, "batch_size=1")
    with pytest.raises(ConfigError, match="no column 'nope'"):
        ll.compare(frame, "batch_size=1", "batch_size=4", metric="nope")
    with pytest.raises(ConfigError, match="does not have"):
        ll.compare(frame, {"nope": 1}, "batch_size=4")
