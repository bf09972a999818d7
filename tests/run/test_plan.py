"""The reuse-aware schedule: points that load the same model run back to back, within the
rules of each cycle order (sequential: a point's cycles together; interleaved: one round over
every point per cycle; shuffled: exactly the seeded shuffle)."""

from __future__ import annotations

from llem_nb.run.plan import load_groups, schedule
from llem_nb.study.study import Study


def two_models() -> Study:
    """Expansion alternates the models: (a,1) (b,1) (a,2) (b,2)."""
    return Study("p", precision="fp32").sweep(batch_size=[1, 2], model=["a", "b"])


def order(study: Study) -> list[tuple[str, int, int]]:
    return [(p.config.model, p.config.batch_size, c) for p, c in schedule(study.points, study.config)]


def loads(sequence: list[tuple[str, int, int]]) -> int:
    """Model loads a sequence needs when each change of model loads the next one."""
    return 1 + sum(1 for x, y in zip(sequence, sequence[1:], strict=False) if x[0] != y[0])


def test_points_are_grouped_by_what_they_load() -> None:
    study = two_models()
    assert [(p.config.model, p.config.batch_size) for p in study.points] == [
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
    ]
    groups = load_groups(study.points)
    assert [[(p.config.model, p.config.batch_size) for p in g] for g in groups] == [
        [("a", 1), ("a", 2)],
        [("b", 1), ("b", 2)],
    ]


def test_precision_and_backend_settings_split_groups_batch_size_and_decoding_do_not() -> None:
    study = Study("p", model="m").sweep(
        precision=["fp32", "bf16"], batch_size=[1, 4], decoder__temperature=[0.0, 0.7]
    )
    groups = load_groups(study.points)
    assert len(groups) == 2
    assert {p.config.precision for p in groups[0]} == {"fp32"}
    threads = Study("t", model="m").sweep(pytorch__num_threads=[1, 2], batch_size=[1, 2])
    assert len(load_groups(threads.points)) == 2


def test_sequential_runs_each_model_s_points_together() -> None:
    study = two_models().cycles(2)
    assert order(study) == [
        ("a", 1, 0), ("a", 1, 1), ("a", 2, 0), ("a", 2, 1),
        ("b", 1, 0), ("b", 1, 1), ("b", 2, 0), ("b", 2, 1),
    ]  # fmt: skip
    assert order(study.reuse("never")) == [
        ("a", 1, 0), ("a", 1, 1), ("b", 1, 0), ("b", 1, 1),
        ("a", 2, 0), ("a", 2, 1), ("b", 2, 0), ("b", 2, 1),
    ]  # fmt: skip


def test_interleaved_stays_one_round_per_cycle_and_alternates_the_models() -> None:
    study = two_models().cycles(3, order="interleaved")
    got = order(study)
    assert got == [
        ("a", 1, 0), ("a", 2, 0), ("b", 1, 0), ("b", 2, 0),
        ("b", 1, 1), ("b", 2, 1), ("a", 1, 1), ("a", 2, 1),
        ("a", 1, 2), ("a", 2, 2), ("b", 1, 2), ("b", 2, 2),
    ]  # fmt: skip
    for c in range(3):
        assert sorted(got[4 * c : 4 * c + 4]) == sorted((m, b, c) for m in "ab" for b in (1, 2))
    never = order(study.reuse("never"))
    assert loads(got) == 4 and loads(never) == 12
    assert never[:4] == [("a", 1, 0), ("b", 1, 0), ("a", 2, 0), ("b", 2, 0)]
    assert never[4:8] == [(m, b, 1) for m, b, _ in never[:4]]


def test_shuffled_is_exactly_the_seeded_shuffle_either_way() -> None:
    study = two_models().cycles(3, order="shuffled", seed=7)
    assert order(study) == order(study.reuse("never"))


def test_one_model_keeps_the_order_the_user_wrote() -> None:
    study = Study("o", model="m").sweep(batch_size=[4, 1, 2]).cycles(2, order="interleaved")
    assert [(b, c) for _, b, c in order(study)] == [(4, 0), (1, 0), (2, 0), (4, 1), (1, 1), (2, 1)]
