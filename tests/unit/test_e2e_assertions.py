"""The end-to-end suite's own judgement of a version switch, on hand-made samples: it must pass
what a clean switch looks like and fail each way a switch can go wrong."""

from __future__ import annotations

import pytest

from djaploy.loadgen import LoadReport, Sample
from tests.e2e.conftest import assert_one_clean_switch


def _ok(start: float, body: str, latency: float = 0.1) -> Sample:
    return Sample(start, latency, "200", True, body)


def test_a_clean_switch_passes_even_when_the_backlog_answers_out_of_start_order() -> None:
    # "1" started at 1.05 but answered late, overlapping the first "2": no request flipped back.
    samples = [_ok(0.0, "1"), _ok(1.0, "2", latency=0.2), _ok(1.05, "1", latency=0.3), _ok(1.5, "2")]
    assert LoadReport.from_samples(samples).version_changes == 3  # what start order alone would say
    assert_one_clean_switch(LoadReport.from_samples(samples), "1", "2")


@pytest.mark.parametrize("samples, message", [
    ([_ok(0.0, "1"), _ok(1.0, "2"), _ok(1.5, "1"), _ok(2.0, "2")], "requests saw 1 again after 2 was served"),
    ([_ok(0.0, "1"), _ok(1.0, "3"), _ok(2.0, "2")], "'3'"),
    ([_ok(0.0, "1"), Sample(0.5, 0.1, "502", False, ""), _ok(1.0, "2")], "502"),
    ([_ok(0.0, "2"), _ok(1.0, "1"), _ok(2.0, "2")], "'2', '1', '2'"),
    ([_ok(0.0, "1"), _ok(1.0, "1")], "'1'"),
])
def test_a_switch_that_flips_back_mixes_in_another_version_or_fails_requests_is_refused(
        samples: list[Sample], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_one_clean_switch(LoadReport.from_samples(samples), "1", "2")
