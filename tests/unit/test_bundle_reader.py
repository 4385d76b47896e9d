"""Layouts: the same objects and logs read back from a cluster-info dump (JSON, YAML, stdout), a must-gather
and tarballs of them; bad content named by file."""

import json
from datetime import UTC, datetime

import pytest
import yaml

from aiops.bundles import reader
from aiops.bundles.archive import BundleError
from aiops_dev.eval.cases import load
from support.bundles import dump_tree, log_block, must_gather_tree, scenario_objects, tar_gz

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
POD = "checkout-a77687ea6c-x2kqz"
LOGS = {("shop", POD, "app"): ["allocating cart buffer", "java.lang.OutOfMemoryError: Java heap space"]}


@pytest.fixture(scope="module")
def objects():
    return scenario_objects(load("checkout-oomkilled"), "shop", NOW)


def held(snap: reader.Snapshot) -> dict[str, list[str]]:
    return {kind: sorted(o["metadata"]["name"] for o in snap.all(kind)) for kind in ("Pod", "ReplicaSet", "Node")}


def test_a_dump_folder_and_its_tarball_hold_the_objects_and_logs(tmp_path, objects):
    dump = dump_tree(tmp_path / "dump", objects, LOGS)
    for path in (dump, tar_gz(dump, tmp_path / "dump.tar.gz")):
        snap = reader.load(path)
        assert snap.layout == reader.CLUSTER_INFO_DUMP
        assert held(snap)["Pod"] == ["checkout-a77687ea6c-p7mfd", POD] and held(snap)["Node"] == ["worker-1"]
        pod = snap.objects["/api/v1/pods"][("shop", POD)]
        assert pod["kind"] == "Pod" and pod["apiVersion"] == "v1"  # list items get them back
        assert snap.logs == {("shop", POD, "app"): {"current": "\n".join(LOGS[("shop", POD, "app")])}}
        assert snap.captured_at == NOW and snap.log_files == 1
        assert reader.summary(snap)["byKind"] == {"Node": 1, "Pod": 2, "Deployment": 1, "ReplicaSet": 2}


def test_the_yaml_and_stdout_variants_read_the_same(tmp_path, objects):
    dump = dump_tree(tmp_path / "dump", objects, LOGS)
    expected = held(reader.load(dump))
    for path in dump.rglob("*.json"):
        path.with_suffix(".yaml").write_text(yaml.safe_dump(json.loads(path.read_text())))
        path.unlink()
    assert held(reader.load(dump)) == expected
    stdout = tmp_path / "dump.txt"  # nodes, then per namespace its lists and each pod's log blocks
    lists = [yaml.safe_load(p.read_text()) for p in sorted(dump.rglob("*.yaml"))]
    stdout.write_text(
        "".join(json.dumps(doc, indent=4) + "\n" for doc in lists)
        + log_block("shop", POD, "app", LOGS[("shop", POD, "app")])
        + log_block("shop", "checkout-a77687ea6c-p7mfd", "app", ["Request log error: the server could not find it"])
    )
    snap = reader.load(stdout)
    assert snap.layout == reader.CLUSTER_INFO_STDOUT and held(snap) == expected
    assert list(snap.logs) == [("shop", POD, "app")]  # kubectl's own error line is not the container's log


def test_a_must_gather_under_its_image_folder_reads_the_same(tmp_path, objects):
    expected = held(reader.load(dump_tree(tmp_path / "dump", objects)))
    mg = must_gather_tree(tmp_path / "mg", objects, LOGS)
    for path in (mg, tar_gz(mg, tmp_path / "mg.tar.gz")):
        snap = reader.load(path)
        assert snap.layout == reader.MUST_GATHER and held(snap) == expected
        assert snap.logs[("shop", POD, "app")]["current"].endswith("Z java.lang.OutOfMemoryError: Java heap space\n")


def test_invalid_json_and_yaml_name_the_file_and_the_line(tmp_path, objects):
    dump = dump_tree(tmp_path / "dump", objects)
    (dump / "shop" / "pods.json").write_text('{"kind": "PodList", "items": [{"metadata": ')
    with pytest.raises(BundleError, match=r"shop/pods.json: invalid JSON at line 1 column \d+: .*truncated"):
        reader.load(dump)
    mg = must_gather_tree(tmp_path / "mg", objects)
    pods = next(mg.rglob("core/pods.yaml"))
    pods.write_text("items:\n  - metadata: {name: [unclosed\n")
    with pytest.raises(BundleError, match=r"core/pods.yaml: invalid YAML at line \d+"):
        reader.load(mg)


def test_content_that_is_not_kubernetes_objects_is_named(tmp_path, objects):
    dump = dump_tree(tmp_path / "dump", objects)
    (dump / "shop" / "events.json").write_text('["a", "list"]')
    with pytest.raises(BundleError, match=r"shop/events.json: neither a Kubernetes list"):
        reader.load(dump)
    (dump / "shop" / "events.json").write_text('{"items": [{"metadata": {}}]}')
    with pytest.raises(BundleError, match=r"shop/events.json: item 0 has no metadata.name"):
        reader.load(dump)
    (dump / "shop" / "events.json").write_bytes(b'{"items": "\xff\xfe"}')
    with pytest.raises(BundleError, match=r"shop/events.json: (not UTF-8|invalid JSON)"):
        reader.load(dump)


def test_a_log_block_cut_short_and_stray_stdout_lines_are_named(tmp_path, objects):
    dump = dump_tree(tmp_path / "dump", objects)
    (dump / "shop" / POD).mkdir()
    (dump / "shop" / POD / "logs.txt").write_text(log_block("shop", POD, "app", ["a"]).rsplit("====", 2)[0])
    with pytest.raises(BundleError, match=rf"shop/{POD}/logs.txt: `==== START logs for container app .*` has no END"):
        reader.load(dump)
    stdout = tmp_path / "dump.txt"
    stdout.write_text('{"kind": "NodeList", "items": null}\nsomething else\n')
    with pytest.raises(BundleError, match=r"dump.txt: line 2 is neither JSON nor a log block"):
        reader.load(stdout)


def test_yaml_aliases_and_deep_nesting_are_refused(tmp_path, objects):
    mg = must_gather_tree(tmp_path / "mg", objects)
    pods = next(mg.rglob("core/pods.yaml"))
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    pods.write_text("\n".join(laughs) + "\nitems: [*a8]\n")  # 10**9 strings once expanded
    with pytest.raises(BundleError, match=r"core/pods.yaml: YAML anchors and aliases are not kubectl output"):
        reader.load(mg)
    dump = dump_tree(tmp_path / "dump", objects)
    (dump / "shop" / "pods.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BundleError, match=r"shop/pods.json: nested too deeply"):
        reader.load(dump)
