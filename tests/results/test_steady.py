"""Steady-state windows, token counts and goodput against timelines built by hand."""

from __future__ import annotations

import math

import pytest

from llem_nb.results.steady import (
    RequestTiming,
    goodput,
    meets_slo,
    mlenergy_window,
    percentiles,
    tokens_in,
    trim_window,
)


def req(sent: float, first: float | None, end: float | None, **kw: object) -> RequestTiming:
    tokens = kw.pop("tokens", None)
    if tokens is None and first is not None and end is not None:
        tokens = [first, end] if end > first else [first]
    return RequestTiming(sent, sent, first, end, list(tokens or []), **kw)  # type: ignore[arg-type]


# Eight requests, batch limit 2. First tokens at 1,2,3,...; finishes at 5,6,...,12.
TIMELINE = [req(0.0 + i * 0.5, 1.0 + i, 5.0 + i) for i in range(8)]


def test_mlenergy_window_opens_at_mth_first_token_and_closes_at_n_minus_m_minus_1_finish() -> None:
    # m = 2: second first token at 2.0; n − m − 1 = 5th finish at 9.0.
    assert mlenergy_window(TIMELINE, 2) == (2.0, 9.0)
    # m = 3: third first token at 3.0; 4th finish at 8.0.
    assert mlenergy_window(TIMELINE, 3) == (3.0, 8.0)


def test_mlenergy_window_absent_when_the_run_is_too_short() -> None:
    assert mlenergy_window(TIMELINE, 4) == (4.0, 7.0)  # 4th first token, 3rd finish
    serial = [req(i, i + 0.1, i + 0.2) for i in range(8)]  # one at a time: never a batch
    assert mlenergy_window(serial, 4) is None  # 3rd finish (2.2) precedes 4th token (3.1)
    assert mlenergy_window(TIMELINE[:3], 2) is None  # n − m − 1 = 0
    failed = [*TIMELINE[:6], req(3.0, None, None, error="boom"), req(3.5, None, None, error="x")]
    # only six finished: the 5th finish (9.0) still closes an m=2 window
    assert mlenergy_window(failed, 2) == (2.0, 9.0)
    assert mlenergy_window(failed, 3) == (3.0, 8.0)


def test_trim_window_cuts_seconds_off_the_run() -> None:
    assert trim_window(TIMELINE, 0.0, 0.0) == (0.0, 12.0)
    assert trim_window(TIMELINE, 1.5, 2.0) == (1.5, 10.0)
    assert trim_window(TIMELINE, 6.0, 6.0) is None


def test_tokens_are_counted_by_arrival_in_the_half_open_window() -> None:
    timeline = [req(0, 1.0, 3.0, tokens=[1.0, 2.0, 3.0]), req(0, 2.5, 4.0, tokens=[2.5, 4.0])]
    assert tokens_in(timeline, 1.0, 3.0) == 3  # 2.0, 3.0, 2.5
    assert tokens_in(timeline, 0.0, 10.0) == 5


def test_percentiles_interpolate_and_skip_unknowns() -> None:
    found = percentiles([*range(1, 101), None])
    assert found[50] == pytest.approx(50.5)
    assert found[90] == pytest.approx(90.1)
    assert found[99] == pytest.approx(99.01)
    assert all(math.isnan(v) for v in percentiles([None]).values())


def test_goodput_counts_requests_meeting_every_slo_by_hand() -> None:
    timeline = [
        req(0.0, 0.1, 1.0, tokens=[0.1, 0.2, 0.3]),  # ttft 100 ms, itl 100 ms, e2e 1 s: good
        req(0.0, 0.6, 1.0, tokens=[0.6, 0.7]),  # ttft 600 ms: misses ttft
        req(1.0, 1.2, 3.5, tokens=[1.2, 1.5, 1.8]),  # itl 300 ms: misses itl
        req(2.0, 2.1, 2.1, tokens=[2.1]),  # one token: no itl, good
        req(3.0, None, None, error="server closed"),  # failed: never good
    ]
    slo = {"ttft_ms": 500.0, "itl_ms": 200.0}
    assert [meets_slo(r, **slo) for r in timeline] == [True, False, False, True, False]
    result = goodput(timeline, **slo)
    assert (result.good, result.total, result.duration_s) == (2, 5, 3.5)
    assert result.attainment == pytest.approx(0.4)
    assert result.rps == pytest.approx(2 / 3.5)
    assert goodput(timeline, e2e_s=1.0).good == 3
    assert goodput(timeline).good == 4


def test_a_chunk_carrying_several_tokens_counts_as_its_share() -> None:
    # three chunks, but the server's usage says six tokens: two per chunk
    r = RequestTiming(0.0, 0.0, 1.0, 3.0, [1.0, 2.0, 3.0], completion_tokens=6)
    assert (r.tokens, r.token_weight) == (6, 2.0)
    assert tokens_in([r], 1.5, 3.0) == 4
    assert RequestTiming(0.0, 0.0, 1.0, 1.0, [1.0]).tokens == 1  # no usage: the chunks
