"""A shared report names no directory of this machine (home, cache, temp), shows a local
model by its name, and with ``anonymise_hosts`` no host name either."""

from __future__ import annotations

import base64
import re
import socket
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import platformdirs
import pytest

import llem_nb
from llem_nb.reporting.privacy import Scrub, model_name
from tests.reporting.test_sentences import frame
from tests.support.nb_data import measured_results

MODEL = Path.home() / ".cache" / "llem_nb" / "models" / "SmolLM2-135M-Instruct"


def _private() -> list[str]:
    dirs = {str(Path.home()), platformdirs.user_cache_dir(), tempfile.gettempdir()}
    return sorted(dirs | {str(Path(d).resolve()) for d in dirs})


def _texts(page: str) -> tuple[str, str]:
    """The page without its data: URIs, and the embedded CSV decoded."""
    csv = re.search(r"href='data:text/csv;base64,([^']+)'", page)
    assert csv is not None
    return re.sub(r"data:[^'\"]+", "DATA", page), base64.b64decode(csv.group(1)).decode()


def test_the_report_names_no_private_directory(fake_backend: str, tmp_path: Path) -> None:
    results = measured_results(tmp_path / "runs", cycles=2, config={"model": str(MODEL)})
    page, csv = _texts(llem_nb.report(results, tmp_path / "report.html").read_text())
    for text in (page, csv):
        assert [d for d in _private() if d in text] == []
        assert str(tmp_path) not in text and "~/" not in text
    assert "SmolLM2-135M-Instruct" in page and "SmolLM2-135M-Instruct" in csv
    assert csv.count("\n") == 1 + 6  # header and every run


def test_a_study_result_s_paths_are_gone_too(fake_backend: str, tmp_path: Path) -> None:
    study = llem_nb.Study(
        "private", model=str(MODEL), backend=fake_backend, n_prompts=2, max_output_tokens=2,
        energy={"source": "none"}, warmup={"runs": 0},
    ).sweep(batch_size=[1, 2])  # fmt: skip
    res = study.run(results_dir=tmp_path / "runs", progress=False)
    page, csv = _texts(llem_nb.report(res, tmp_path / "r.html", reference=False).read_text())
    assert [d for d in _private() if d in page + csv] == []


def test_host_names_are_anonymised_on_request(tmp_path: Path) -> None:
    """A peer's rows named after its machine (study and ``hostname``) and this machine's name."""
    here = socket.gethostname()
    df = frame({1: [0.5, 0.52], 2: [0.3, 0.31]}).assign(
        study="lab-node-7", hostname="lab-node-7", note=f"run on {here}"
    )
    plain = llem_nb.report(df, tmp_path / "a.html", reference=False).read_text()
    assert "lab-node-7" in _texts(plain)[0] and here in _texts(plain)[1]
    hidden = llem_nb.report(
        df, tmp_path / "b.html", reference=False, anonymise_hosts=True
    ).read_text()
    text, csv = _texts(hidden)
    assert "lab-node-7" not in text + csv and "host-1" in text and "host-1" in csv
    if len(here) > 2:  # names of two letters are too common a word to replace
        assert f"run on {here}" not in csv and "run on host-2" in csv


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (str(MODEL), "SmolLM2-135M-Instruct"),
        ("~/.cache/llem_nb/models/SmolLM2-135M-Instruct/", "SmolLM2-135M-Instruct"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ],
)
def test_models_read_as_names_or_hub_ids(raw: str, shown: str) -> None:
    assert model_name(raw) == shown


def test_scrub_keeps_other_text() -> None:
    scrub = Scrub()
    home = str(Path.home())
    assert scrub(f"failed to open {home}/data/x.json: missing") == "failed to open x.json: missing"
    assert scrub("a ~ b, 1/2, org/model") == "a ~ b, 1/2, org/model"
    assert scrub(f"{home}fs/x") == f"{home}fs/x"  # another directory that starts alike
