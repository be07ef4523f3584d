"""``painterly batch --ray``: the small tree on a local Ray (``ray.init(num_cpus=2)``), actors
loading a real tiny model file by path: the same pairs and pixels as the embedded run, the bad
inputs reported, a stopped run resumed. Skipped, saying why, when Ray Data is not installed."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import painterly as st
from batch_tree import BAD, GOOD, make_tree, pixels, temp_files
from painterly.batch import read_manifest

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "painterly[ray]"')
pytest.importorskip("ray.data", reason='Ray Data is missing: pip install "painterly[ray]"')

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (start-up takes seconds); the actors import this checkout."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), old]))
    os.environ["PAINTERLY_BF16"] = "off"  # the actors' float32, as in every test
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def test_ray_gives_the_embedded_outputs_and_resumes(local_ray, tmp_path, tiny_model_file):
    src, styles = make_tree(tmp_path)
    common = dict(model=str(tiny_model_file), size=32, seed=1, alpha=0.4, alpha_max=1.0)
    embedded = st.batch(src, tmp_path / "embedded", styles, **common)

    class Stop(Exception):
        pass

    def stop_after_first(state):
        raise Stop

    with pytest.raises(Stop):  # stopped as the first results come back
        st.batch(src, tmp_path / "ray", styles, ray=True, batch_size=2, actors=2, **common,
                 progress=stop_after_first)
    report = st.batch(src, tmp_path / "ray", styles, ray=True, batch_size=2, actors=2, **common)
    assert report.runner == "ray" and report.done + report.skipped == len(GOOD)
    assert sorted(f["content"] for f in report.failed) == sorted(str(src / b) for b in BAD)
    assert temp_files(tmp_path / "ray") == []

    def table(out):
        return {r["output"]: (r["content"], r["style"], r["alpha"], r["model"])
                for r in read_manifest(out / "manifest.csv", require="output")}

    assert table(tmp_path / "ray") == table(tmp_path / "embedded")  # same pairs, one row per output
    for rel in GOOD:  # the same pixels (float32 both; JPEG/PNG/WEBP encoded alike)
        diff = np.abs(pixels(tmp_path / "ray" / rel) - pixels(tmp_path / "embedded" / rel))
        assert diff.max() <= 1, rel
    assert embedded.done == len(GOOD)
