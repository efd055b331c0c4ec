"""The suite's test order (tests/suite_order.py): long tests spread over the workers' shares."""
from __future__ import annotations

import json

import pytest
from xdist.scheduler import WorkStealingScheduling

import suite_order


class _Config:
    def __init__(self, workers: int):
        self._tx = [f"{workers}*popen"]

    def getvalue(self, name):
        return self._tx if name == "tx" else None


class _Node:
    """The part of xdist's WorkerController the scheduler talks to, recording what it is sent."""

    shutting_down = False

    def __init__(self, name: str):
        self.gateway = type("Gateway", (), {"id": name})()
        self.sent: list[int] = []

    def send_runtest_some(self, indices):
        self.sent.extend(indices)

    def shutdown(self):
        self.shutting_down = True


@pytest.mark.parametrize(("count", "workers"), [(1050, 4), (1051, 4), (7, 3), (10, 5), (3, 4)])
def test_share_sizes_are_the_split_xdist_worksteal_makes(count, workers):
    scheduler = WorkStealingScheduling(_Config(workers))
    nodes = [_Node(f"gw{k}") for k in range(workers)]
    collection = [f"t{i}" for i in range(count)]
    for node in nodes:
        scheduler.add_node(node)
    for node in nodes:
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    assert [len(node.sent) for node in nodes] == suite_order.share_sizes(count, workers)
    # Each share is contiguous in the collected order: this is what the order relies on.
    assert [i for node in nodes for i in node.sent] == list(range(count))


def _shares(order, costs, workers):
    out, start = [], 0
    for size in suite_order.share_sizes(len(costs), workers):
        out.append(order[start:start + size])
        start += size
    return out


def test_long_tests_go_to_different_workers_longest_first_and_loads_even_out():
    costs = [0.1] * 40
    for index, seconds in {3: 150, 10: 80, 11: 66, 12: 65, 20: 50, 30: 45, 31: 25, 39: 20}.items():
        costs[index] = seconds
    order = suite_order.schedule(costs, 4)
    assert sorted(order) == list(range(40))
    shares = _shares(order, costs, 4)
    # Each share begins with its long tests, longest first; the four longest are apart.
    firsts = [share[0] for share in shares]
    assert sorted(firsts) == [3, 10, 11, 12]
    for share in shares:
        long = [costs[i] for i in share if costs[i] >= suite_order.STORED_MIN_SECONDS]
        assert [costs[i] for i in share[:len(long)]] == sorted(long, reverse=True)
    loads = [sum(costs[i] for i in share) for share in shares]
    # The LPT rule: nothing is stacked on the 150 s test, the rest sit on the others.
    assert max(loads) == pytest.approx(150 + 0.1 * 9)
    assert min(loads) > 90


def test_short_tests_keep_their_collection_order_within_and_across_shares():
    costs = [0.1] * 30
    costs[25] = 40.0
    order = suite_order.schedule(costs, 3)
    short = [i for i in order if costs[i] < 1]
    assert short == sorted(short)
    assert order[0] == 25


def test_one_worker_runs_long_tests_first_then_the_rest_in_order():
    costs = [0.1, 5.0, 0.3, 50.0, 0.2]
    assert suite_order.schedule(costs, 1) == [3, 1, 0, 2, 4]


def test_no_workers_is_an_error():
    with pytest.raises(ValueError, match="at least 1"):
        suite_order.schedule([1.0], 0)


def test_durations_round_trip_keeps_only_long_tests(tmp_path):
    path = tmp_path / "durations.json"
    suite_order.store_durations({"a::slow": 12.345, "b::fast": 0.4}, path)
    assert json.loads(path.read_text()) == {"a::slow": 12.3}
    assert suite_order.load_durations(path) == {"a::slow": 12.3}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", ""])
def test_an_unreadable_durations_file_gives_no_costs(tmp_path, text):
    path = tmp_path / "durations.json"
    path.write_text(text)
    assert suite_order.load_durations(path) == {}
    assert suite_order.load_durations(tmp_path / "missing.json") == {}


def test_a_group_lands_on_one_share_as_one_unit():
    costs = [0.1] * 40
    costs[0], costs[1] = 150.0, 90.0
    groups = [None] * 40
    for i, seconds in {5: 30.0, 6: 20.0, 7: 0.3, 30: 0.2}.items():
        costs[i] = seconds
        groups[i] = "spark"
    order = suite_order.schedule(costs, 4, groups)
    assert sorted(order) == list(range(40))
    shares = _shares(order, costs, 4)
    (home,) = [share for share in shares if 5 in share]
    assert {5, 6, 7, 30} <= set(home)  # short members too: they would start the session elsewhere
    assert 0 not in home and 1 not in home  # the group (50 s) is placed like a long test
    assert home[:4] == [5, 6, 7, 30]


def test_a_group_larger_than_a_share_spills_over_instead_of_failing():
    costs = [1.0] * 12
    order = suite_order.schedule(costs, 4, ["g"] * 5 + [None] * 7)
    assert sorted(order) == list(range(12))
    assert set(order[:3]) == {0, 1, 2}  # the first share holds what fits of the group


def test_group_keys_must_match_the_tests():
    with pytest.raises(ValueError, match="group keys"):
        suite_order.schedule([1.0, 2.0], 2, ["a"])
