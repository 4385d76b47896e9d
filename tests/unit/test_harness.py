"""The suite refuses to run against a context that is not meant for tests."""

import pytest
import yaml

from harness import guard_test_context


@pytest.mark.parametrize(
    "context, ok",
    [
        ("kind-aiops", True),
        ("aiops-test", True),
        ("staging-test-eu", True),
        ("k3d-dev", True),
        ("prod-eu-west-1", False),
        ("admin@production", False),
        ("", False),
    ],
)
def test_guard(tmp_path, context, ok):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({"current-context": context}))
    if ok:
        assert guard_test_context(str(path)) == context
    else:
        with pytest.raises(RuntimeError, match="refusing context"):
            guard_test_context(str(path))
