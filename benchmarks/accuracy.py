"""How close llem_nb's GPU numbers come to the truth, on simulated GPUs that behave like NVML.

Each case runs the real NvmlMeter (and, for the phase split, the real Harness) against
``llem_nb.testing``'s NVML simulator in virtual time: energy counters that update every
0 / 20 / 100 ms, power readings averaged over 0 / 1 s, 4 ms per NVML read, GPUs read one
after another. The truth is the exact integral of the power traces the simulated
workload drew. Printed, side by side:

1. gross energy error for 5 / 10 / 30 s windows (goal: within 0.5 % for windows ≥ 10 s
   at 100 ms updates);
2. net energy of an idle-only window with 1 and 8 GPUs, as a share of gross (goal:
   within 0.5 %);
3. the prefill share of a 50 ms and a 500 ms prefill (goal: within 5 % of the true share,
   or flagged ``phase_unresolved``).

    python benchmarks/accuracy.py
"""

from __future__ import annotations

import sys
from typing import Any

from llem_nb.config.experiment import ExperimentConfig
from llem_nb.testing.simulated import SimBackend, SimWorkload, use_sim_backend

UPDATES_S = (0.0, 0.02, 0.1)
AVERAGING_S = (0.0, 1.0)
WINDOWS_S = (5.0, 10.0, 30.0)
LATENCY_S = 0.004
missed: list[str] = []


def machine(update_s: float, avg_s: float, **kw: Any) -> SimWorkload:
    """Instantaneous power where NVML averages over 0 s; the 1 s average otherwise."""
    return SimWorkload.make(
        counter_update_s=update_s,
        power_avg_s=avg_s,
        instant_power=avg_s == 0,
        read_latency_s=LATENCY_S,
        **kw,
    )


def config(**kw: Any) -> ExperimentConfig:
    base: dict[str, Any] = {
        "model": "sim",
        "backend": use_sim_backend(),
        "n_prompts": 8,
        "batch_size": 4,
        "max_output_tokens": 40,
        "gpus": 1,
    }
    return ExperimentConfig.model_validate({**base, **kw})


def gross_error(update_s: float, avg_s: float, window_s: float) -> float:
    """Relative error of gross energy over a busy window of ``window_s``."""
    work = machine(update_s, avg_s, prefill_s=0.08, step_s=0.025)
    meter = work.meter()
    backend = SimBackend(config(), work)
    prompts = ["a b c d"] * 4
    meter.idle_power_w(2.0)
    t0 = meter.start()
    while work.clock.now() - t0 < window_s - 1.1:
        backend.generate(prompts)
    reading = meter.stop()
    meter.close()
    truth = work.energy_j(reading.t0, reading.t1)
    assert reading.energy_j is not None
    return (reading.energy_j - truth) / truth


def idle_net_share(gpus: int, update_s: float, avg_s: float) -> float:
    """Net ÷ gross of a window in which nothing runs (should be 0)."""
    idle = [60.0 + 9.5 * k for k in range(gpus)]
    work = machine(update_s, avg_s, gpus=gpus, idle_w=idle)
    meter = work.meter()
    watts = meter.idle_power_w(5.0)
    meter.start()
    work.clock.sleep(10.0)
    reading = meter.stop()
    meter.close()
    net = sum(d.energy_j - watts[d.label] * reading.window_s for d in reading.devices)
    return net / (reading.energy_j or 1.0)


def prefill_share(
    update_s: float, avg_s: float, prefill_s: float
) -> tuple[float, float, str, bool]:
    """(measured share, true share, method, flagged) through the Harness."""
    work = machine(update_s, avg_s, prefill_s=prefill_s, step_s=0.025, prefill_w=500.0)
    cfg = config(measurement={"min_window_s": 10.0})
    result = work.harness(cfg).run(cfg)
    t0, t1 = work.window()
    truth = work.prefill_energy_j(t0, t1) / work.energy_j(t0, t1)
    assert result.prefill_energy_j is not None and result.energy_gross_j is not None
    share = result.prefill_energy_j / result.energy_gross_j
    return share, truth, str(result.phase_method), "phase_unresolved" in result.quality_flags


def label(update_s: float, avg_s: float) -> str:
    return f"counter {update_s * 1000:>3.0f} ms, power avg {avg_s:g} s"


def main() -> int:
    print("1. Gross energy error vs the exact integral (busy window, idle outside)")
    print(f"   {'':<30}" + "".join(f"{w:>9.0f} s" for w in WINDOWS_S))
    for update in UPDATES_S:
        for avg in AVERAGING_S:
            errors = [gross_error(update, avg, w) for w in WINDOWS_S]
            print(f"   {label(update, avg):<30}" + "".join(f"{e:>+10.3%}" for e in errors))
            for w, e in zip(WINDOWS_S, errors, strict=True):
                if update == 0.1 and w >= 10 and abs(e) > 0.005:
                    missed.append(f"gross {label(update, avg)}, {w:g} s: {e:+.3%}")

    print("\n2. Net energy of an idle-only window, as a share of gross (should be 0)")
    print(f"   {'':<30}{'1 GPU':>10}{'8 GPUs':>10}")
    for update in (0.0, 0.1):
        for avg in AVERAGING_S:
            shares = [idle_net_share(n, update, avg) for n in (1, 8)]
            print(f"   {label(update, avg):<30}" + "".join(f"{s:>+10.3%}" for s in shares))
            missed.extend(
                f"idle net {label(update, avg)}: {s:+.3%}" for s in shares if abs(s) > 0.005
            )

    print("\n3. Prefill share of gross energy (measured vs true; flagged = phase_unresolved)")
    for prefill in (0.05, 0.5):
        for update in UPDATES_S:
            for avg in AVERAGING_S:
                share, truth, method, flagged = prefill_share(update, avg, prefill)
                error = (share - truth) / truth
                ok = abs(error) <= 0.05 or flagged
                state = "flagged" if flagged else ("ok" if ok else "MISSED")
                print(
                    f"   prefill {prefill * 1000:>3.0f} ms, {label(update, avg):<30}"
                    f" measured {share:6.2%}  true {truth:6.2%}  error {error:+7.2%}"
                    f"  {method:<7} {state}"
                )
                if not ok:
                    missed.append(f"prefill {prefill * 1000:.0f} ms {label(update, avg)}")

    print()
    if missed:
        print("missed: " + "; ".join(missed))
        return 1
    print("all goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
