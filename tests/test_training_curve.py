"""benchmarks.training_curve --recorded: figures of runs that are not kept."""

import pytest

from benchmarks import training_curve


def test_recorded_points_parse_and_start_at_zero():
    cpu, gain = training_curve.parse_points("191:1.35,295.5:1.57")
    assert cpu == [0.0, 191.0, 295.5]
    assert gain == [0.0, 1.35, 1.57]


def test_recorded_points_that_start_at_zero_keep_their_starting_gain():
    cpu, gain = training_curve.parse_points("0:3.23,7.3:3.46")
    assert cpu == [0.0, 7.3]
    assert gain == [3.23, 3.46]


@pytest.mark.parametrize("bad", ["1:2:3", "191", "a:b", ""])
def test_bad_recorded_points_are_a_usage_error_before_any_run_is_read(bad, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        training_curve.main([str(tmp_path / "no-such-run"), "--recorded", "x", bad])
    assert e.value.code == 2
    assert "points must read CPU:GAIN" in capsys.readouterr().err
