"""Seeded traffic patterns (traffic/patterns.py): permutations that leave the leaf, all-to-all
bursts, hot-spot traffic."""
from __future__ import annotations

from collections import Counter

import pytest

from topologies.errors import SpecError
from traffic import patterns

HOSTS = [f"h{i}" for i in range(1, 17)]


@pytest.mark.parametrize("per_leaf", [1, 2, 4, 8])
def test_permutation_leaves_the_leaf(per_leaf):
    leaf = {h: f"l{i // per_leaf}" for i, h in enumerate(HOSTS)}
    for seed in range(50):
        pairs = patterns.permutation(HOSTS, leaf, f"{seed}/perm")
        assert sorted(s for s, _ in pairs) == sorted(HOSTS) == sorted(d for _, d in pairs)
        assert all(leaf[s] != leaf[d] for s, d in pairs)


def test_permutation_is_seeded_and_varies_with_the_seed():
    leaf = {h: f"l{i // 4}" for i, h in enumerate(HOSTS)}
    a = patterns.permutation(HOSTS, leaf, "1/p")
    assert a == patterns.permutation(HOSTS, leaf, "1/p")
    assert len({tuple(patterns.permutation(HOSTS, leaf, f"{s}/p")) for s in range(20)}) > 15


def test_every_derangement_can_be_drawn():
    hosts = ["a", "b", "c", "d"]
    drawn = Counter(tuple(d for _, d in patterns.permutation(hosts, {h: h for h in hosts}, str(s)))
                    for s in range(2000))
    assert len(drawn) == 9  # the 9 derangements of 4 elements, each drawn
    assert min(drawn.values()) > 2000 / 9 / 2


def test_permutation_impossible_when_a_leaf_holds_most_hosts():
    with pytest.raises(SpecError, match="at most half"):
        patterns.permutation(["h1", "h2", "h3"], {"h1": "l1", "h2": "l1", "h3": "l2"}, "1")


def test_bursts():
    flows = patterns.bursts(["h1", "h2", "h3"], 1000, 2, 0.5, 1.0, 0, 0.0, "1")
    assert len(flows) == 2 * 3 * 2
    assert sorted({f[3] for f in flows}) == [1.0, 1.5]
    assert all(s != d for s, d, _, _ in flows)
    some = patterns.bursts(HOSTS, 1000, 3, 1.0, 0.0, 2, 0.1, "7")
    assert len(some) == 3 * 16 * 2
    assert all(b <= t < b + 0.1 for _, _, _, t in some for b in [int(t)])
    assert some == patterns.bursts(HOSTS, 1000, 3, 1.0, 0.0, 2, 0.1, "7")


def test_hotspot_sends_its_share_to_the_hot_hosts():
    flows = patterns.hotspot(HOSTS, ["h3"], 0.5, 2000, 1000, 0.0, 2.0, "1")
    to_hot = sum(1 for _, d, _, _ in flows if d == "h3") / len(flows)
    assert 0.5 < to_hot < 0.6  # 0.5 + 0.5/16 expected
    assert all(s != d for s, d, _, _ in flows) and all(0 <= t < 2.0 for *_, t in flows)
    assert patterns.pick_hot(HOSTS, 2, "3") == patterns.pick_hot(HOSTS, 2, "3")
    with pytest.raises(SpecError):
        patterns.pick_hot(HOSTS, 16, "1")
