"""The loghub evaluation: the grouping-accuracy metric, the Content split, HDFS as a check of both, and
drain3's default configuration as the baseline in the same run."""

from pathlib import Path

import pytest

from aiops_dev.eval.loghub import (
    DRAIN_PUBLISHED,
    drain3_cluster_ids,
    evaluate_system,
    grouping_accuracy,
    system_folders,
)

LOGHUB = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "loghub"


def test_grouping_accuracy_counts_only_lines_whose_cluster_is_exactly_their_group():
    # Cluster names need not match the true ones, only the partition does.
    assert grouping_accuracy(["a", "a", "b", "c"], [7, 7, 3, 9]) == 1.0
    # Cluster 1 merges all of a and all of b: none of those four lines is right; c is.
    assert grouping_accuracy(["a", "a", "b", "b", "c"], [1, 1, 1, 1, 2]) == pytest.approx(1 / 5)
    # Group a is split over clusters 1 and 2: its three lines are wrong, although each cluster is pure; b is right.
    assert grouping_accuracy(["a", "a", "a", "b"], [1, 1, 2, 3]) == pytest.approx(1 / 4)
    # Both at once: cluster 1 = a ∪ part of b, cluster 2 = rest of b, cluster 3 = c exactly.
    truth = ["a", "b", "a", "b", "b", "c", "c"]
    predicted = [1, 1, 1, 2, 2, 3, 3]
    assert grouping_accuracy(truth, predicted) == pytest.approx(2 / 7)
    with pytest.raises(ValueError):
        grouping_accuracy(["a", "b"], [1])


def test_drain3_baseline_runs_with_its_defaults():
    lines = ["connected to db in 12 ms", "connected to db in 7 ms", "cache miss for key alpha"]
    ids = drain3_cluster_ids(lines)
    assert ids[0] == ids[1] != ids[2]


@pytest.fixture(scope="module")
def results():
    found = {folder.name: evaluate_system(folder) for folder in system_folders(LOGHUB)}
    assert found, f"no system folders found in {LOGHUB}"
    return found


@pytest.mark.evaldata("loghub")
def test_content_split_agrees_with_the_ground_truth(results):
    for r in results.values():
        assert r.lines > 0, f"{r.system}: no lines read"
        assert len(r.content_mismatches) <= 0.01 * r.lines, f"{r.system}: Content differs on {r.content_mismatches}"


@pytest.mark.evaldata("loghub")
def test_hdfs_grouping_matches_drain(results):
    assert "HDFS" in results, f"no HDFS folder in {LOGHUB} (the loghub subset has one)"
    assert results["HDFS"].accuracy >= 0.95


@pytest.mark.evaldata("loghub")
def test_one_configuration_does_at_least_as_well_as_drain_tuned_per_system(results):
    ours = sum(r.accuracy for r in results.values()) / len(results)
    published = sum(DRAIN_PUBLISHED[name] for name in results) / len(results)
    assert ours >= published, f"mean grouping accuracy {ours:.3f} < Drain's published {published:.3f}"


@pytest.mark.evaldata("loghub")
def test_one_configuration_beats_drain3_with_its_defaults(results):
    ours = sum(r.accuracy for r in results.values()) / len(results)
    drain3 = sum(r.drain3_accuracy for r in results.values()) / len(results)
    assert ours > drain3, f"mean grouping accuracy {ours:.3f} <= drain3's defaults {drain3:.3f}"
