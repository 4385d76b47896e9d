"""The model catalogue: bad entries are refused with the field named; the example loads; pool manifests."""

import pytest

from aiops import settings
from aiops.inference import catalogue, pools
from harness import REPO

POOL = {"image": "vllm/vllm-openai:v0.11.0", "weights": {"pvc": {"claimName": "models"}}}


def error(entry: dict, name: str = "qwen") -> str:
    with pytest.raises(catalogue.CatalogueError) as exc:
        catalogue.parse({"models": {name: entry}})
    return str(exc.value)


def test_the_example_loads():
    models = catalogue.load(REPO / "examples" / "models" / "catalogue.yaml").models
    assert models["qwen-coder"].gpu_product == "NVIDIA-L4" and models["hosted"].external is not None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**POOL, "gpuProduct": "NVIDIA-H1OO"}, "models.qwen.gpuProduct: unknown GPU product 'NVIDIA-H1OO'"),
        ({**POOL, "gpuCount": 0}, "models.qwen.gpuCount: a vLLM pool needs at least 1 GPU"),
        ({**POOL, "gpuCount": 3, "tensorParallelSize": 2}, "models.qwen.tensorParallelSize: 2 does not divide"),
        ({"image": "v"}, "models.qwen.weights: required"),
        ({"image": "v", "weights": {}}, "models.qwen.weights: give exactly one of pvc, image or hostPath"),
        ({**POOL, "weights": {"hostPath": {"path": "/m"}, "pvc": {"claimName": "m"}}}, "got pvc, hostPath"),
        ({"weights": POOL["weights"]}, "models.qwen.image: required"),
        ({"external": {"baseURL": "http://x"}, "image": "v", "servedModelName": "m"}, "remove image"),
        ({"external": {"baseURL": "http://x"}}, "models.qwen.servedModelName: required"),
        ({**POOL, "gpus": 1}, "models.qwen.gpus: unknown field"),
    ],
)
def test_bad_entries_name_the_field(entry, message):
    assert message in error(entry)


def test_bad_names_and_files():
    assert "models.Qwen_1: a model name must be a DNS label" in error(POOL, "Qwen_1")
    with pytest.raises(catalogue.CatalogueError, match="expected a mapping"):
        catalogue.parse(["x"])


def test_unknown_product_escape_and_mig_labels():
    ok = catalogue.parse({"models": {"a": {**POOL, "gpuProduct": "Acme-X1", "allowUnknownProduct": True}}})
    assert ok.models["a"].gpu_product == "Acme-X1"
    mig = {**POOL, "gpuProduct": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"}
    assert catalogue.parse({"models": {"a": mig}}).models["a"].gpu_product.endswith("MIG-1g.5gb")


def test_bad_file_stops_the_operator(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  qwen: {image: v, weights: {pvc: {claimName: m}}, gpuCount: 0}\n")
    with pytest.raises(SystemExit, match="AIOPS_MODEL_CATALOGUE: .*models.qwen.gpuCount"):
        settings.from_env({"AIOPS_MODEL_CATALOGUE": str(path)})


def test_pipeline_parallel_and_image_weights():
    entry = catalogue.parse(
        {
            "models": {
                "big": {
                    **POOL,
                    "gpuCount": 4,
                    "tensorParallelSize": 2,
                    "weights": {"image": {"reference": "r", "path": "w"}},
                }
            }
        }
    ).models["big"]
    args = pools.vllm_args("big", entry)
    assert args[0] == "/models/w" and args[args.index("--pipeline-parallel-size") + 1] == "2"
    template = pools.pod_template("big", entry)
    assert template["spec"]["volumes"][0] == {
        "name": "weights",
        "image": {"reference": "r", "pullPolicy": "IfNotPresent"},
    }
    assert "nodeSelector" not in template["spec"]
    assert pools.endpoint("big", entry, "ns") == "http://aiops-pool-big.ns.svc:8000/v1"
