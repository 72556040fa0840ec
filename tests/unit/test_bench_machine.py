"""What `make bench` records about the machine beside its figures: the hypervisor's steal."""

import sys

import pytest

from bench.load import cpu_times, steal_percent


def test_steal_is_the_share_of_cpu_time_given_to_other_guests():
    before = [100, 0, 50, 800, 10, 0, 0, 40, 0, 0]  # user nice system idle iowait irq softirq steal
    after = [130, 0, 60, 850, 10, 0, 0, 50, 0, 0]  # 100 ticks later, 10 of them stolen
    assert steal_percent(before, after) == 10.0
    assert steal_percent(before, before) is None  # no time passed
    assert steal_percent([], after) is None  # no /proc/stat


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_the_counters_come_from_proc_stat_and_only_grow():
    first = cpu_times()
    assert len(first) >= 8
    second = cpu_times()
    assert all(b >= a for a, b in zip(first, second, strict=True))
    share = steal_percent(first, [x + 1 for x in second])
    assert share is not None and 0.0 <= share <= 100.0
