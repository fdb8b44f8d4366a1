"""``python -m executor.profile``: a quick grid on the smoke pair, and bad input rejected before loading."""

from __future__ import annotations

import pytest

from executor.profile import main
from ssdsim.profile import LatencyMeasurements


@pytest.fixture(scope="module")
def measured(smoke_build, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "latency.json"
    assert main(["--pair", str(smoke_build.pair_dir), "--quick", "-o", str(out)]) == 0
    return LatencyMeasurements.load(out)


def test_grids_cover_the_ssd_shapes(measured):
    t, d, tree = measured.target.grid, measured.draft.grid, measured.draft_tree.grid
    assert t.batch == (1, 2) and t.tokens == (1, 3) and t.context == (32, 64)  # AR, verify k=2
    assert d.tokens == (1, 2, 3)  # drafting and jit, SD's first draft forward, glue k+1
    assert tree.tokens == (2, 4)  # branches per sequence
    for grid in (t, d, tree):
        assert all(s > 0 for a in grid.seconds for b in a for s in b)


def test_link_and_host_steps(measured):
    sizes = [int(b) for b, _ in measured.link_samples]
    assert sizes[0] == 8 and sizes[-1] == 1048576
    assert measured.link.fixed_s > 0
    modes = {(s["mode"], s["batch"], s["k"]) for s in measured.host_steps}
    assert {("ar", 1, 0), ("sd", 1, 2), ("ar", 2, 0), ("sd", 2, 2)} <= modes
    prov = measured.provenance
    assert prov["tool"] == "python -m executor.profile" and "load_avg_1m" in prov


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--contexts", "2,64"], "--contexts"),
        (["--batch-sizes", "0,2"], "--batch-sizes"),
        (["--rounds", "0"], "--rounds"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_arguments_exit_2(smoke_build, tmp_path, capsys, argv, message):
    out = tmp_path / "l.json"
    assert main(["--pair", str(smoke_build.pair_dir), "-o", str(out), *argv]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_missing_pair_exit_2(tmp_path, capsys):
    assert main(["--pair", str(tmp_path / "nopair"), "-o", str(tmp_path / "l.json")]) == 2
    assert "nopair" in capsys.readouterr().err
