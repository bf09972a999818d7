"""How close llem_nb's GPU numbers come to the truth, on simulated GPUs that behave like NVML.

Each case runs the real NvmlMeter (and, for the phase split, the real Harness) against
``llem_nb.testing``'s NVML simulator in virtual time: energy counters that update every
0 / 20 / 100 ms, power readings averaged over 0 / 1 s, 4 ms per NVML read, GPUs read one
after another. The truth is the exact integral of the power traces the simulated
workload drew. Each part prints "met" or "missed" against its goal:

1. gross energy error for 5 / 10 / 30 s windows (goal: within 0.5 % for windows ≥ 10 s
   at 100 ms updates);
2. net energy of an idle-only window with 1 and 8 GPUs, as a share of gross (goal:
   within 0.5 %, not flagged ``net_energy_clamped``);
3. the counter-vs-power cross-check on constant, ramp, step and prefill/decode power at
   5 / 10 / 30 s, instantaneous and 1 s averaged power (goal: within 1 %), and a power
   sensor 10 % off (goal: flagged) or 2 % off (goal: not flagged);
4. the prefill share over 10 ms–1 s prefills, polls of 10–130 ms, counters 0 / 20 /
   100 ms, 0 / 1 s averaging and counter ticks at several phases against the window
   (goal: within 5 % of the true share, or flagged ``phase_unresolved``).

    python benchmarks/accuracy.py [--smoke]

``--smoke`` runs a corner of each part (seconds), for ``make test``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence

from llem_nb.measure.quality import MAX_COUNTER_POWER_DISAGREEMENT
from llem_nb.testing.accuracy import (
    GROSS_GOAL,
    NET_GOAL,
    PHASE_GOAL,
    RATIO_GOAL,
    TRACES,
    cross_check_window,
    gross_error,
    idle_net,
    prefill_case,
)

missed: list[str] = []


def label(update_s: float, avg_s: float) -> str:
    return f"counter {update_s * 1000:>3.0f} ms, power avg {avg_s:g} s"


def verdict(ok: bool, what: str) -> str:
    if not ok:
        missed.append(what)
    return "met" if ok else "MISSED"


def gross(updates: Sequence[float], averaging: Sequence[float], windows: Sequence[float]) -> None:
    print("1. Gross energy error vs the exact integral (busy window, idle outside)")
    print(f"   {'':<30}" + "".join(f"{w:>9.0f} s" for w in windows))
    for update, avg in itertools.product(updates, averaging):
        errors = [gross_error(update, avg, w) for w in windows]
        ok = all(abs(e) <= GROSS_GOAL for w, e in zip(windows, errors, strict=True) if w >= 10)
        goal = update == 0.1
        state = verdict(ok, f"gross {label(update, avg)}") if goal else ""
        print(f"   {label(update, avg):<30}" + "".join(f"{e:>+10.3%}" for e in errors), state)


def net(updates: Sequence[float], averaging: Sequence[float]) -> None:
    print("\n2. Net energy of an idle-only window, as a share of gross (should be 0, unflagged)")
    print(f"   {'':<30}{'1 GPU':>10}{'8 GPUs':>10}")
    for update, avg in itertools.product(updates, averaging):
        found = [idle_net(n, update, avg) for n in (1, 8)]
        ok = all(abs(share) <= NET_GOAL and not flagged for share, flagged in found)
        cells = "".join(f"{s:>+10.3%}" + ("*" if f else "") for s, f in found)
        print(f"   {label(update, avg):<30}{cells}", verdict(ok, f"idle net {label(update, avg)}"))


def cross_check(shapes: Sequence[str], windows: Sequence[float]) -> None:
    print("\n3. Counter ÷ power cross-check ratio, counter every 100 ms (should be 1)")
    print(f"   {'':<34}" + "".join(f"{w:>8.0f} s" for w in windows))
    for shape, avg in itertools.product(shapes, (0.0, 1.0)):
        ratios = [
            cross_check_window(TRACES[shape], w, avg).devices[0].counter_vs_power_ratio
            for w in windows
        ]
        ok = all(r is not None and abs(r - 1) <= RATIO_GOAL for r in ratios)
        name = f"{shape}, power avg {avg:g} s"
        cells = "".join(f"{r:>10.4f}" if r is not None else f"{'-':>10}" for r in ratios)
        print(f"   {name:<34}{cells}", verdict(ok, f"cross-check {name}"))
    for scale, should_flag in ((1.10, True), (1.02, False)):
        for avg in (0.0, 1.0):
            ratio = cross_check_window(TRACES["step"], 5.0, avg, power_scale=scale).devices[0]
            r = ratio.counter_vs_power_ratio
            flagged = r is not None and abs(r - 1) > MAX_COUNTER_POWER_DISAGREEMENT
            name = f"sensor {scale - 1:+.0%}, power avg {avg:g} s, 5 s"
            state = verdict(flagged is should_flag, f"cross-check {name}")
            print(f"   {name:<34}{r:>10.4f}  {'flagged' if flagged else 'not flagged'}", state)


def phases(
    prefills: Sequence[float],
    polls: Sequence[float],
    updates: Sequence[float],
    fractions: Sequence[float],
) -> None:
    print("\n4. Prefill share of gross energy (within 5 % of the truth, or phase_unresolved)")
    print(f"   {'prefill':>8}{'poll':>7}{'counter':>9}{'cases':>7}{'flagged':>9}"
          f"{'worst unflagged':>17}")  # fmt: skip
    for prefill, poll, update in itertools.product(prefills, polls, updates):
        cases = [
            prefill_case(
                prefill,
                poll_s=poll,
                update_s=update,
                avg_s=avg,
                phase_s=fraction * (update or 0.05),
            )
            for avg, fraction in itertools.product((0.0, 1.0), fractions)
        ]
        flagged = sum(c.flagged for c in cases)
        worst = max((abs(c.error) for c in cases if not c.flagged), default=0.0)
        ok = all(c.ok for c in cases)
        name = f"prefill {prefill * 1000:.0f} ms, poll {poll * 1000:.0f} ms, {label(update, 0)}"
        print(
            f"   {prefill * 1000:>6.0f}ms{poll * 1000:>5.0f}ms{update * 1000:>7.0f}ms"
            f"{len(cases):>7}{flagged:>9}{worst:>16.2%}",
            verdict(ok, name),
        )
    print(f"   (goal: every unflagged share within {PHASE_GOAL:.0%} of the truth)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a corner of each part (seconds)")
    args = parser.parse_args()
    if args.smoke:
        gross((0.1,), (1.0,), (10.0,))
        net((0.1,), (1.0,))
        cross_check(("step", "prefill_decode"), (5.0,))
        phases((0.043, 1.0), (0.13,), (0.02,), (0.3,))
    else:
        gross((0.0, 0.02, 0.1), (0.0, 1.0), (5.0, 10.0, 30.0))
        net((0.0, 0.1), (0.0, 1.0))
        cross_check(tuple(TRACES), (5.0, 10.0, 30.0))
        phases(
            (0.01, 0.02, 0.043, 0.1, 0.2, 0.3, 0.5, 1.0),
            (0.01, 0.05, 0.13),
            (0.0, 0.02, 0.1),
            (0.1, 0.35, 0.6, 0.85),
        )
    print()
    if missed:
        print("missed: " + "; ".join(missed))
        return 1
    print("every goal met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
