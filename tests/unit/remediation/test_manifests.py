"""Manifest edits for pull-request delivery: the values asked for change, every other byte stays."""

import difflib

import pytest

from aiops.sops.remediation.manifests import Change, ManifestError, NotFound, Workload, plan, split_image

CHECKOUT = Workload("Deployment", "checkout", "shop")
IMAGE = "registry.example.com/shop/checkout"

PLAIN = f"""\
# The checkout service. Owned by team payments.
apiVersion: v1
kind: Service
metadata:
  name: checkout
spec:
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout   # keep in step with the Service
  labels: {{app: checkout}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: checkout}}
  template:
    metadata:
      labels: {{app: checkout}}
    spec:
      containers:
        - name: checkout
          image: "{IMAGE}:1.5.0"  # bumped by CI
          ports:
            - containerPort: 8080
        - name: proxy
          image: envoyproxy/envoy:v1.30.1
          resources: {{}}
"""


def write(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_image_rollback_in_a_plain_manifest_changes_that_value_only(tmp_path):
    root = write(tmp_path, {"apps/shop/checkout.yaml": PLAIN, "apps/shop/README.md": "not yaml: ["})
    change = Change(images={"checkout": (f"{IMAGE}:1.5.0", f"{IMAGE}:1.4.2")})
    [edit] = plan(root, "apps/shop", False, False, CHECKOUT, change)
    assert edit.path == "apps/shop/checkout.yaml"
    assert changed_lines(PLAIN, edit.text) == [
        f'-          image: "{IMAGE}:1.5.0"  # bumped by CI',
        f'+          image: "{IMAGE}:1.4.2"  # bumped by CI',
    ]
    assert edit.what == [f"checkout.image: {IMAGE}:1.5.0 -> {IMAGE}:1.4.2"]


def test_replicas_and_resources_are_replaced_or_inserted_in_place(tmp_path):
    root = write(tmp_path, {"checkout.yaml": PLAIN})
    [edit] = plan(root, "", False, False, CHECKOUT, Change(replicas=5))
    assert changed_lines(PLAIN, edit.text) == ["-  replicas: 2", "+  replicas: 5"]

    limits = {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m"}}
    [edit] = plan(root, "", False, False, CHECKOUT, Change(container="checkout", resources=limits))
    # No resources yet: a block after the item's first line, at the container's indentation.
    assert changed_lines(PLAIN, edit.text) == [
        "+          resources:",
        "+            limits:",
        "+              memory: 512Mi",
        "+            requests:",
        "+              cpu: 250m",
    ]
    assert edit.text.index("resources:") > edit.text.index("- name: checkout")
    # An empty flow mapping is filled in flow style.
    [edit] = plan(root, "", False, False, CHECKOUT, Change(container="proxy", resources={"limits": {"cpu": "1"}}))
    assert changed_lines(PLAIN, edit.text) == ["-          resources: {}", "+          resources: {limits: {cpu: '1'}}"]


def test_existing_resources_merge_key_by_key(tmp_path):
    text = PLAIN.replace(
        "          ports:\n            - containerPort: 8080\n",
        "          resources:\n            limits:\n              memory: 256Mi  # was OOMKilled at 200Mi\n"
        "              cpu: 500m\n",
    )
    root = write(tmp_path, {"checkout.yaml": text})
    change = Change(container="checkout", resources={"limits": {"memory": "1Gi"}, "requests": {"memory": "512Mi"}})
    [edit] = plan(root, "", False, False, CHECKOUT, change)
    assert changed_lines(text, edit.text) == [
        "+            requests:",
        "+              memory: 512Mi",
        "-              memory: 256Mi  # was OOMKilled at 200Mi",
        "+              memory: 1Gi  # was OOMKilled at 200Mi",
    ]


def test_kustomize_images_entry_is_updated_or_added(tmp_path):
    kustomization = f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # the Deployment lives there
images:
  # pinned by the release pipeline
  - name: {IMAGE}
    newTag: "1.5.0"
"""
    root = write(tmp_path, {"overlays/prod/kustomization.yaml": kustomization})
    change = Change(images={"checkout": (f"{IMAGE}:1.5.0", f"{IMAGE}:1.4.2")})
    [edit] = plan(root, "overlays/prod", False, False, CHECKOUT, change)
    assert changed_lines(kustomization, edit.text) == ['-    newTag: "1.5.0"', '+    newTag: "1.4.2"']

    other = Change(images={"checkout": ("ghcr.io/acme/cart:2.0", "ghcr.io/acme/cart:1.9")})
    [edit] = plan(root, "overlays/prod", False, False, CHECKOUT, other)
    assert changed_lines(kustomization, edit.text) == [
        "+  - name: ghcr.io/acme/cart",
        "+    newTag: '1.9'",
    ]
    # Replicas go into a replicas: list the kustomization did not have yet.
    [edit] = plan(root, "overlays/prod", False, False, CHECKOUT, Change(replicas=4))
    assert changed_lines(kustomization, edit.text) == ["+replicas:", "+- name: checkout", "+  count: 4"]


def test_kustomize_resources_edit_a_listed_manifest_and_refuse_a_base(tmp_path):
    kustomization = "resources:\n- deployment.yaml\n"
    root = write(tmp_path, {"app/kustomization.yaml": kustomization, "app/deployment.yaml": PLAIN})
    [edit] = plan(root, "app", False, False, CHECKOUT, Change(container="checkout", resources={"limits": {"cpu": "2"}}))
    assert edit.path == "app/deployment.yaml" and "cpu: '2'" in edit.text

    write(tmp_path, {"app/kustomization.yaml": "resources:\n- ../base\n"})
    with pytest.raises(
        ManifestError, match=r"comes from a base or a generator\): set the resources of container checkout by hand"
    ):
        plan(root, "app", False, False, CHECKOUT, Change(container="checkout", resources={"limits": {"cpu": "2"}}))


def test_helm_needs_a_person_and_a_missing_manifest_is_named(tmp_path):
    root = write(tmp_path, {"chart/Chart.yaml": "name: checkout\n", "chart/values.yaml": "image: {tag: 1.5.0}\n"})
    change = Change(images={"checkout": (f"{IMAGE}:1.5.0", f"{IMAGE}:1.4.2")})
    with pytest.raises(ManifestError, match=r"Helm sources need a manual change: set image of container checkout to"):
        plan(root, "chart", False, False, CHECKOUT, change)
    (root / "elsewhere").mkdir()
    with pytest.raises(ManifestError, match="Helm sources need a manual change"):  # spec.source.helm / chart
        plan(root, "elsewhere", False, True, CHECKOUT, change)
    with pytest.raises(NotFound, match="no manifest of Deployment shop/checkout among 0 file"):
        plan(root, "elsewhere", False, False, CHECKOUT, change)
    with pytest.raises(NotFound, match="not a directory"):
        plan(root, "../outside", False, False, CHECKOUT, change)


def test_the_workload_is_found_by_kind_name_and_namespace_only_once(tmp_path):
    other_ns = PLAIN.replace("  name: checkout   #", "  namespace: staging\n  name: checkout   #")
    root = write(tmp_path, {"a/prod.yaml": PLAIN, "a/nested/staging.yaml": other_ns})
    change = Change(replicas=3)
    assert plan(root, "a", True, False, CHECKOUT, change)[0].path == "a/prod.yaml"
    write(tmp_path, {"a/nested/copy.yaml": PLAIN})
    assert plan(root, "a", False, False, CHECKOUT, change)[0].path == "a/prod.yaml"  # not recursive: one
    with pytest.raises(ManifestError, match="defined in several files"):
        plan(root, "a", True, False, CHECKOUT, change)


def test_a_value_that_is_not_a_scalar_is_refused_not_clobbered(tmp_path):
    text = PLAIN.replace("  replicas: 2\n", "  replicas:\n    - 2\n")
    root = write(tmp_path, {"d.yaml": text})
    with pytest.raises(ManifestError, match="spec.replicas is not a single value"):
        plan(root, "", False, False, CHECKOUT, Change(replicas=3))


@pytest.mark.parametrize(
    "image, parts",
    [
        ("nginx", ("nginx", None, None)),
        ("registry:5000/team/app:1.2", ("registry:5000/team/app", "1.2", None)),
        ("ghcr.io/a/b@sha256:abc", ("ghcr.io/a/b", None, "sha256:abc")),
        ("ghcr.io/a/b:1.0@sha256:abc", ("ghcr.io/a/b", "1.0", "sha256:abc")),
    ],
)
def test_split_image(image, parts):
    assert split_image(image) == parts
