"""The built-in prompt set, deterministic selection, and the user .jsonl loader."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from llem_nb.backends.datasets import dataset_info, load_prompts, read_jsonl_prompts
from llem_nb.errors import ConfigError


def _builtin_records() -> list[dict[str, str]]:
    text = resources.files("llem_nb.backends.datasets").joinpath("builtin.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the built-in set -------------------------------------------------------


def test_builtin_has_enough_unique_records() -> None:
    records = _builtin_records()
    assert len(records) >= 220
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    assert all(set(r) == {"id", "task", "prompt"} for r in records)
    texts = [" ".join(r["prompt"].lower().split()) for r in records]
    assert len(set(texts)) == len(texts)


def test_builtin_mixes_lengths_and_tasks() -> None:
    records = _builtin_records()
    words = [len(r["prompt"].split()) for r in records]
    assert sum(w < 15 for w in words) >= 10
    assert sum(w > 120 for w in words) >= 10
    tasks = {r["task"] for r in records}
    assert len(tasks) >= 8


def test_dataset_info_builtin() -> None:
    info = dataset_info("builtin")
    assert info["name"] == "builtin"
    assert info["source"] == "builtin"
    assert info["count"] == len(_builtin_records())
    assert sum(info["tasks"].values()) == info["count"]
    assert len(info["tasks"]) >= 8


def test_dataset_info_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['{"text": "a"}', '{"text": "b"}'])
    info = dataset_info(str(path))
    assert info["count"] == 2
    assert info["source"] == str(path)
    assert info["field"] == "text"


# --- selection ----------------------------------------------------------------


def test_selection_is_deterministic_across_processes() -> None:
    here = load_prompts("builtin", 20, seed=7)
    code = (
        "import json; from llem_nb.backends.datasets import load_prompts; "
        "print(json.dumps(load_prompts('builtin', 20, seed=7)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == here


def test_different_seeds_give_different_selections() -> None:
    a = load_prompts("builtin", 10, seed=0)
    b = load_prompts("builtin", 10, seed=1)
    assert a != b
    assert load_prompts("builtin", 10, seed=0) == a


def test_selection_returns_new_list_and_smaller_n_is_prefix() -> None:
    first = load_prompts("builtin", 10, seed=3)
    first.clear()
    again = load_prompts("builtin", 10, seed=3)
    assert len(again) == 10
    assert load_prompts("builtin", 4, seed=3) == again[:4]


def test_selection_covers_whole_dataset_without_repeats() -> None:
    count = dataset_info("builtin")["count"]
    everything = load_prompts("builtin", count, seed=5)
    assert len(set(everything)) == count


def test_load_prompts_from_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps({"prompt": f"p{i}"}) for i in range(6)])
    picked = load_prompts(str(path), 6, seed=2)
    assert sorted(picked) == [f"p{i}" for i in range(6)]
    assert load_prompts(str(path), 3, seed=2) == picked[:3]


def test_too_many_prompts_names_n_prompts() -> None:
    count = dataset_info("builtin")["count"]
    with pytest.raises(ConfigError) as err:
        load_prompts("builtin", count + 1)
    assert err.value.field == "n_prompts"
    assert "n_prompts" in str(err.value)
    assert str(count) in str(err.value)


def test_too_many_prompts_from_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['"one"', '"two"'])
    with pytest.raises(ConfigError, match=r"n_prompts=5.*only 2") as err:
        load_prompts(str(path), 5)
    assert err.value.field == "n_prompts"


@pytest.mark.parametrize("n", [0, -1])
def test_n_must_be_positive(n: int) -> None:
    with pytest.raises(ConfigError) as err:
        load_prompts("builtin", n)
    assert err.value.field == "n_prompts"


def test_unknown_dataset_name() -> None:
    with pytest.raises(ConfigError) as err:
        load_prompts("buitlin", 3)
    assert err.value.field == "dataset"
    message = str(err.value)
    assert "no dataset named 'buitlin'" in message
    assert "'builtin'" in message
    assert ".jsonl" in message


# --- the .jsonl loader --------------------------------------------------------


@pytest.mark.parametrize("field", ["prompt", "text", "instruction", "question"])
def test_loader_detects_each_field(tmp_path: Path, field: str) -> None:
    lines = [json.dumps({"id": i, field: f"{field} {i}", "other": "x"}) for i in range(3)]
    path = _write(tmp_path / "d.jsonl", lines)
    assert read_jsonl_prompts(path) == [f"{field} 0", f"{field} 1", f"{field} 2"]


def test_loader_prefers_fields_in_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps({"question": "q", "text": "t"})])
    assert read_jsonl_prompts(path) == ["t"]


def test_loader_accepts_bare_strings_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['"first"', "", "   ", '"second"'])
    assert read_jsonl_prompts(str(path)) == ["first", "second"]


def test_loader_accepts_strings_mixed_with_objects(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['"plain"', '{"instruction": "obj"}'])
    assert read_jsonl_prompts(path) == ["plain", "obj"]


def test_loader_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as err:
        read_jsonl_prompts(tmp_path / "nope.jsonl")
    assert err.value.field == "dataset"


def test_load_prompts_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as err:
        load_prompts(str(tmp_path / "nope.jsonl"), 1)
    assert err.value.field == "dataset"


def test_loader_rejects_non_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('["a", "b"]', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not a \.jsonl file") as err:
        read_jsonl_prompts(path)
    assert err.value.field == "dataset"
    with pytest.raises(ConfigError, match=r"not a \.jsonl file"):
        load_prompts(str(path), 1)


def test_loader_malformed_line_names_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['{"prompt": "ok"}', '{"prompt": "ok"}', '{"prompt": '])
    with pytest.raises(ConfigError, match="line 3") as err:
        read_jsonl_prompts(path)
    assert err.value.field == "dataset"
    assert "not valid JSON" in str(err.value)


def test_loader_no_recognised_field_lists_keys(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps({"input": "x", "label": 1})])
    with pytest.raises(ConfigError) as err:
        read_jsonl_prompts(path)
    assert err.value.field == "dataset"
    message = str(err.value)
    assert "'input'" in message and "'label'" in message
    for name in ("prompt", "text", "instruction", "question"):
        assert name in message


def test_loader_later_record_missing_field_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['{"prompt": "a"}', '{"text": "b"}'])
    with pytest.raises(ConfigError, match=r"line 2.*'prompt'") as err:
        read_jsonl_prompts(path)
    assert err.value.field == "dataset"


def test_loader_rejects_non_text_records(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ['"fine"', "42"])
    with pytest.raises(ConfigError, match="line 2"):
        read_jsonl_prompts(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_loader_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="empty") as err:
        read_jsonl_prompts(path)
    assert err.value.field == "dataset"
