"""infra/k8s: rendered with kustomize (kubectl's, offline) and validated against the Kubernetes
API schemas shipped in kubernetes-validate (strict: unknown fields fail), plus kiln's own rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
KUBE_VERSION = "1.30.0"
SERVICES = ("gateway", "pipeline", "media", "export")
STORAGE_PATH = "/var/lib/kiln/storage"


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (which carries kustomize) is not installed on this machine")
    out = subprocess.run(
        [kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(K8S / request.param)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_every_builtin_resource_is_valid(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked by test_pipeline_scales_on_the_runs_backlog
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_the_validator_can_fail() -> None:
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSION, strict=True)


def test_services_have_probes_resources_and_disruption_budgets(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    deployments = by_kind(docs, "Deployment")
    budgets = by_kind(docs, "PodDisruptionBudget")
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] > 1, name
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert (
            budgets[name]["spec"]["selector"]["matchLabels"]
            == deployment["spec"]["selector"]["matchLabels"]
        )


def test_one_storage_root_rw_in_media_ro_in_export(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    deployments = by_kind(docs, "Deployment")
    claims: dict[str, set[str]] = {}
    for name in ("media", "export"):
        spec = deployments[name]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == STORAGE_PATH)
        assert mount.get("readOnly", False) is (name == "export")
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        claims.setdefault(volume["persistentVolumeClaim"]["claimName"], set()).add(name)
    assert claims == {"kiln-storage": {"media", "export"}}
    pvc = by_kind(docs, "PersistentVolumeClaim")["kiln-storage"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    config = by_kind(docs, "ConfigMap")
    [kiln_config] = [c for n, c in config.items() if n.startswith("kiln-config")]
    assert kiln_config["data"]["KILN_STORAGE_ROOT"] == STORAGE_PATH


def test_comfyui_pool_is_one_process_per_gpu_with_stable_names(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    pool = by_kind(docs, "StatefulSet")["comfyui"]
    [container] = pool["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    [kiln_config] = [
        c for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("kiln-config")
    ]
    urls = kiln_config["data"]["KILN_COMFYUI_URLS"].split(",")
    assert urls == [f"http://comfyui-{i}.comfyui:8188" for i in range(pool["spec"]["replicas"])]


def test_production_overlay_scales_out() -> None:
    docs = render(K8S / "overlays" / "production")
    assert all(d["metadata"].get("namespace") == "kiln" for d in docs if d["kind"] != "Namespace")
    [kiln_config] = [
        c for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("kiln-config")
    ]
    assert kiln_config["data"]["KILN_NATS_STREAM_REPLICAS"] == "3"
    assert kiln_config["data"]["KILN_STORAGE_URL"].startswith("s3://")
    assert by_kind(docs, "Deployment")["gateway"]["spec"]["replicas"] >= 3
    for name in ("media", "export"):
        [container] = by_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": "kiln-s3"}} in container["envFrom"]


def test_pipeline_scales_on_the_runs_backlog() -> None:
    docs = render(K8S / "overlays" / "production")
    scaled = by_kind(docs, "ScaledObject")["pipeline"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "pipeline"
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == "RUNS"
    assert trigger["metadata"]["consumer"] == "pipeline"


def test_nats_values_describe_a_three_node_jetstream_cluster() -> None:
    values = yaml.safe_load((K8S / "nats" / "values.yaml").read_text())
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert values["config"]["jetstream"]["enabled"] is True
    assert values["config"]["jetstream"]["fileStore"]["pvc"]["enabled"] is True
