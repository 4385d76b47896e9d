"""Change review (aiops/changes): the pure checks of a changeReview AnalysisRun, on realistic Deployments and
StatefulSets. The live objects are what a kube-apiserver (1.20.2, the test control plane) returned for the
manifests below (`kubectl create --dry-run=server -o json`, server-only metadata dropped): the defaults it
fills in are what a rendered manifest leaves out."""

import copy
import json
import math
import time
from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from aiops.api.analysisrun import ChangeReview
from aiops.changes import OVERRIDE, Burn, PastChangeIncident, Usage, changes, merge_patch, review
from aiops.changes.checks import matches
from aiops.changes.workload import at_least, quantity, show_bytes, show_cores
from support.strategies import mutated

GI, MI = 2**30, 2**20

API = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: default, labels: {app: api}}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, tier: web}}
    spec:
      initContainers:
      - name: migrate
        image: registry.example.com/shop/api:1.4.2
        command: [./migrate]
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
      containers:
      - name: api
        image: registry.example.com/shop/api:1.4.2
        ports: [{containerPort: 8080, name: http}]
        env:
        - {name: LOG_LEVEL, value: info}
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        resources:
          requests: {cpu: "0.5", memory: 1024Mi}
          limits: {cpu: 2, memory: 2Gi}
        readinessProbe: {httpGet: {path: /ready, port: http}}
        livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 10}
"""
DB = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: postgres
        image: postgres:16.2
        env: [{name: POSTGRES_PASSWORD, value: hunter2}]
        resources: {requests: {cpu: 250m, memory: 512Mi}, limits: {memory: 1Gi}}
        readinessProbe: {exec: {command: [pg_isready]}}
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"""
WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate}
  template:
    metadata: {labels: {app: web}, annotations: {prometheus.io/scrape: "true"}}
    spec:
      serviceAccountName: web
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, fsGroup: 2000}
      tolerations: [{key: dedicated, operator: Equal, value: web, effect: NoSchedule}]
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector: {matchLabels: {app: web}}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: web}}}
      volumes:
      - {name: config, configMap: {name: web-config}}
      - {name: tls, secret: {secretName: web-tls}}
      - {name: cache, emptyDir: {}}
      - name: info
        downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
      - name: token
        projected: {sources: [{serviceAccountToken: {path: token, expirationSeconds: 3600}}]}
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}, {containerPort: 443}]
        envFrom: [{configMapRef: {name: web-env}}]
        env:
        - name: MEM_LIMIT
          valueFrom: {resourceFieldRef: {resource: limits.memory}}
        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
        startupProbe: {tcpSocket: {port: 80}, failureThreshold: 30}
        readinessProbe: {httpGet: {port: 80, path: /}}
        livenessProbe: {exec: {command: [cat, /tmp/ok]}}
        lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
        volumeMounts: [{name: config, mountPath: /etc/web}, {name: tls, mountPath: /etc/tls, readOnly: true}]
      - name: sidecar
        image: busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7
        args: [sh, -c, "while true; do sleep 3600; done"]
"""

LIVE_API = json.loads(
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1,"labels":{"app":"api"},"name":"api","na'
    'mespace":"default"},"spec":{"progressDeadlineSeconds":600,"replicas":3,"revisionHistoryLimit":10,"selector":{"'
    'matchLabels":{"app":"api"}},"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"Roll'
    'ingUpdate"},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"api","tier":"web"}},"spec":{"con'
    'tainers":[{"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"key"'
    ':"password","name":"db"}}},{"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.pod'
    'IP"}}}],"image":"registry.example.com/shop/api:1.4.2","imagePullPolicy":"IfNotPresent","livenessProbe":{"failu'
    'reThreshold":3,"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"initialDelaySeconds":10,"periodSecon'
    'ds":10,"successThreshold":1,"timeoutSeconds":1},"name":"api","ports":[{"containerPort":8080,"name":"http","pro'
    'tocol":"TCP"}],"readinessProbe":{"failureThreshold":3,"httpGet":{"path":"/ready","port":"http","scheme":"HTTP"'
    '},"periodSeconds":10,"successThreshold":1,"timeoutSeconds":1},"resources":{"limits":{"cpu":"2","memory":"2Gi"}'
    ',"requests":{"cpu":"500m","memory":"1Gi"}},"terminationMessagePath":"/dev/termination-log","terminationMessage'
    'Policy":"File"}],"dnsPolicy":"ClusterFirst","initContainers":[{"command":["./migrate"],"image":"registry.examp'
    'le.com/shop/api:1.4.2","imagePullPolicy":"IfNotPresent","name":"migrate","resources":{"limits":{"memory":"256M'
    'i"},"requests":{"cpu":"100m","memory":"128Mi"}},"terminationMessagePath":"/dev/termination-log","terminationMe'
    'ssagePolicy":"File"}],"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"termi'
    'nationGracePeriodSeconds":30}}}}'
)

LIVE_DB = json.loads(
    '{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"generation":1,"name":"db","namespace":"default"},"sp'
    'ec":{"podManagementPolicy":"OrderedReady","replicas":1,"revisionHistoryLimit":10,"selector":{"matchLabels":{"a'
    'pp":"db"}},"serviceName":"db","template":{"metadata":{"creationTimestamp":null,"labels":{"app":"db"}},"spec":{'
    '"containers":[{"env":[{"name":"POSTGRES_PASSWORD","value":"hunter2"}],"image":"postgres:16.2","imagePullPolicy'
    '":"IfNotPresent","name":"postgres","readinessProbe":{"exec":{"command":["pg_isready"]},"failureThreshold":3,"p'
    'eriodSeconds":10,"successThreshold":1,"timeoutSeconds":1},"resources":{"limits":{"memory":"1Gi"},"requests":{"'
    'cpu":"250m","memory":"512Mi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"Fil'
    'e","volumeMounts":[{"mountPath":"/var/lib/postgresql/data","name":"data"}]}],"dnsPolicy":"ClusterFirst","resta'
    'rtPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30'
    '}},"updateStrategy":{"rollingUpdate":{"partition":0},"type":"RollingUpdate"},"volumeClaimTemplates":[{"apiVers'
    'ion":"v1","kind":"PersistentVolumeClaim","metadata":{"creationTimestamp":null,"name":"data"},"spec":{"accessMo'
    'des":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},"status":{"phase"'
    ':"Pending"}}]}}'
)

LIVE_WEB = json.loads(
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1,"name":"web","namespace":"default"},"sp'
    'ec":{"progressDeadlineSeconds":600,"replicas":1,"revisionHistoryLimit":10,"selector":{"matchLabels":{"app":"we'
    'b"}},"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"},"template":'
    '{"metadata":{"annotations":{"prometheus.io/scrape":"true"},"creationTimestamp":null,"labels":{"app":"web"}},"s'
    'pec":{"affinity":{"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"podAffinityTerm":{"l'
    'abelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"kubernetes.io/hostname"},"weight":100}]}},"automoun'
    'tServiceAccountToken":false,"containers":[{"env":[{"name":"MEM_LIMIT","valueFrom":{"resourceFieldRef":{"diviso'
    'r":"0","resource":"limits.memory"}}}],"envFrom":[{"configMapRef":{"name":"web-env"}}],"image":"nginx:1.27","im'
    'agePullPolicy":"IfNotPresent","lifecycle":{"preStop":{"exec":{"command":["sleep","5"]}}},"livenessProbe":{"exe'
    'c":{"command":["cat","/tmp/ok"]},"failureThreshold":3,"periodSeconds":10,"successThreshold":1,"timeoutSeconds"'
    ':1},"name":"web","ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":443,"protocol":"TCP"}],"readi'
    'nessProbe":{"failureThreshold":3,"httpGet":{"path":"/","port":80,"scheme":"HTTP"},"periodSeconds":10,"successT'
    'hreshold":1,"timeoutSeconds":1},"resources":{"limits":{"memory":"256Mi"},"requests":{"cpu":"100m","memory":"12'
    '8Mi"}},"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},"startupProbe":{"f'
    'ailureThreshold":30,"periodSeconds":10,"successThreshold":1,"tcpSocket":{"port":80},"timeoutSeconds":1},"termi'
    'nationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","volumeMounts":[{"mountPath":"/etc'
    '/web","name":"config"},{"mountPath":"/etc/tls","name":"tls","readOnly":true}]},{"args":["sh","-c","while true;'
    ' do sleep 3600; done"],"image":"busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c'
    '7","imagePullPolicy":"IfNotPresent","name":"sidecar","resources":{},"terminationMessagePath":"/dev/termination'
    '-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":'
    '"default-scheduler","securityContext":{"fsGroup":2000,"runAsNonRoot":true},"serviceAccount":"web","serviceAcco'
    'untName":"web","terminationGracePeriodSeconds":30,"tolerations":[{"effect":"NoSchedule","key":"dedicated","ope'
    'rator":"Equal","value":"web"}],"topologySpreadConstraints":[{"labelSelector":{"matchLabels":{"app":"web"}},"ma'
    'xSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway"}],"volumes":[{"configMap"'
    ':{"defaultMode":420,"name":"web-config"},"name":"config"},{"name":"tls","secret":{"defaultMode":420,"secretNam'
    'e":"web-tls"}},{"emptyDir":{},"name":"cache"},{"downwardAPI":{"defaultMode":420,"items":[{"fieldRef":{"apiVers'
    'ion":"v1","fieldPath":"metadata.labels"},"path":"labels"}]},"name":"info"},{"name":"token","projected":{"defau'
    'ltMode":420,"sources":[{"serviceAccountToken":{"expirationSeconds":3600,"path":"token"}}]}}]}}}}'
)

Q = 'max by (container) (container_memory_working_set_bytes{namespace="default",pod=~"api-[^-]+(-[^-]+)?"})'
FITS = {"api": Usage(cpu_p95=0.3, cpu_peak=0.8, memory_p95=700 * MI, memory_peak=900 * MI, query=Q)}
PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "api", "namespace": "default"},
    "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}},
}
MARCH = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def api() -> dict:
    return yaml.safe_load(API)


def db() -> dict:
    return yaml.safe_load(DB)


def container(obj: dict, name: str = "api") -> dict:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def run(proposed: dict, live: dict | None = LIVE_API, **kw) -> ChangeReview:
    """The review with every source available and quiet unless a test says otherwise."""
    args = {"usage": FITS, "pdbs": [PDB], "past": [], "burns": [], **kw}
    return review(proposed, live, **args)


def found(r: ChangeReview, check: str, path: str | None = None) -> list:
    return [f for f in r.findings if f.check == check and (path is None or f.path == path)]


def pdb(spec: dict, name: str = "api", namespace: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


C = "spec.template.spec.containers[api]"


# --- quantities ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("0.5", 0.5),
        (".5", 0.5),
        (2, 2),
        (0.25, 0.25),
        ("1e3", 1000),
        ("1.5e-3", 0.0015),
        ("1Gi", GI),
        ("1024Mi", GI),
        ("100Ki", 102400),
        ("1.5G", 1.5e9),
        ("1E", 1e18),
        ("+1", 1),
    ],
)
def test_quantities_parse_as_the_api_server_reads_them(text, value):
    assert quantity(text, "x") == pytest.approx(value)


@pytest.mark.parametrize(
    "bad",
    ["abc", "1Gb", "1ki", "Mi", "1e", "", " 1", "1 ", "1_000", "NaN", "Infinity", "-1", "1e999999", None, True, [1]],
)
def test_a_bad_quantity_is_an_error_naming_its_field(bad):
    with pytest.raises(ValueError, match=r"^spec\.x\.memory: .*(quantity|non-negative)"):
        quantity(bad, "spec.x.memory")


def test_quantities_are_shown_short_and_suggested_rounded_up():
    assert [show_bytes(n) for n in (1.1 * GI, 640 * MI, 1536, 512)] == ["1.1Gi", "640Mi", "1.5Ki", "512"]
    assert [show_cores(x) for x in (0.25, 1, 1.5, 12.25)] == ["250m", "1", "1.5", "12.2"]
    assert at_least("memory", 900 * MI * 1.2) == "1080Mi"
    assert at_least("memory", 1.1 * GI * 1.2) == "1352Mi"  # 1351.68Mi, up
    assert at_least("cpu", 0.3001) == "301m"


# --- merge patch ----------------------------------------------------------------------------------------------

# RFC 7386, appendix A
RFC_7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


def test_a_merge_patch_merges_named_lists_by_name_as_kubectl_patch_does():
    live = {"containers": [{"name": "api", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
                           {"name": "sidecar", "image": "s:1"}]}  # fmt: skip
    patch = {"containers": [{"name": "api", "env": [{"name": "B", "value": "2"}]}, {"name": "new", "image": "n:1"}]}
    assert merge_patch(live, patch) == {"containers": [
        {"name": "api", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "s:1"},
        {"name": "new", "image": "n:1"},
    ]}  # fmt: skip
    assert merge_patch({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}  # unnamed lists: replaced


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386)
def test_merge_patch_follows_rfc_7386(target, patch, result):
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == result
    assert target == before


def test_a_merge_patch_to_a_live_deployment():
    patch = yaml.safe_load("spec: {replicas: 1, revisionHistoryLimit: null, template: {metadata: {labels: {v: '2'}}}}")
    patched = merge_patch(LIVE_API, patch)
    assert patched["spec"]["replicas"] == 1 and "revisionHistoryLimit" not in patched["spec"]
    assert patched["spec"]["template"]["metadata"]["labels"] == {"app": "api", "tier": "web", "v": "2"}
    assert patched["spec"]["template"]["spec"] == LIVE_API["spec"]["template"]["spec"]
    assert LIVE_API["spec"]["replicas"] == 3 and LIVE_API["spec"]["revisionHistoryLimit"] == 10
    assert {(c.path, c.before, c.after) for c in changes(LIVE_API, patched)} == {
        ("spec.replicas", "3", "1"),
        ("spec.template.metadata.labels.v", None, "2"),
    }  # revisionHistoryLimit dropped: 10 is the default the API server puts back


# --- what changed ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("live", "manifest"), [(LIVE_API, API), (LIVE_DB, DB), (LIVE_WEB, WEB)])
def test_the_manifest_of_a_live_object_changes_nothing(live, manifest):
    """The API server's defaults (probe periods, termination paths, volume modes, PVC templates) are no change;
    nor are quantities written another way ("0.5" and 500m, 1024Mi and 1Gi, 2 and "2")."""
    assert changes(live, yaml.safe_load(manifest)) == []


def test_changes_are_listed_by_category_with_containers_and_env_named():
    p = api()
    p["spec"]["replicas"] = 5
    c = container(p)
    c["image"] = "registry.example.com/shop/api:1.5.0"
    c["resources"]["limits"]["memory"] = "1536Mi"
    c["resources"]["requests"]["cpu"] = "500m"  # the same as 0.5
    c["readinessProbe"]["httpGet"]["path"] = "/readyz"
    c["env"] = [
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-v2", "key": "password"}}},
        {"name": "FEATURE_X", "value": "on"},
    ]
    p["spec"]["template"]["spec"]["tolerations"] = [{"key": "spot", "operator": "Exists"}]
    got = {(c.path, c.category, c.before, c.after) for c in changes(LIVE_API, p)}
    pod_ip = '{"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}}'
    assert got == {
        ("spec.replicas", "replicas", "3", "5"),
        (f"{C}.image", "image", "registry.example.com/shop/api:1.4.2", "registry.example.com/shop/api:1.5.0"),
        (f"{C}.resources.limits.memory", "resources", "2Gi", "1536Mi"),
        (f"{C}.readinessProbe.httpGet.path", "probes", "/ready", "/readyz"),
        (f"{C}.env[LOG_LEVEL].value", "env", "info", "debug"),
        (f"{C}.env[DB_PASSWORD].valueFrom.secretKeyRef.name", "env", "db", "db-v2"),
        (f"{C}.env[POD_IP]", "env", pod_ip, None),
        (f"{C}.env[FEATURE_X]", "env", None, "on"),
        ("spec.template.spec.tolerations", "other", None, '[{"key":"spot","operator":"Exists"}]'),
    }


def test_a_field_left_out_is_a_change_unless_the_api_server_defaults_it_so():
    live = copy.deepcopy(LIVE_API)
    live["spec"]["revisionHistoryLimit"] = 5
    live["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 120
    assert {(c.path, c.before, c.after) for c in changes(live, api())} == {
        ("spec.revisionHistoryLimit", "5", None),
        ("spec.template.spec.terminationGracePeriodSeconds", "120", None),
    }


def test_lists_without_names_are_compared_by_position():
    p = yaml.safe_load(WEB)
    container(p, "sidecar")["args"][2] = "sleep infinity"
    container(p, "web")["ports"].append({"containerPort": 8443})
    got = {(c.path, c.before, c.after) for c in changes(LIVE_WEB, p)}
    web = "spec.template.spec.containers[web]"
    assert got == {
        ("spec.template.spec.containers[sidecar].args[2]", "while true; do sleep 3600; done", "sleep infinity"),
        (
            f"{web}.ports",
            '[{"containerPort":80,"protocol":"TCP"},{"containerPort":443,"protocol":"TCP"}]',
            '[{"containerPort":80},{"containerPort":443},{"containerPort":8443}]',
        ),
    }


def test_secret_values_are_redacted_and_long_values_cut():
    live, p = copy.deepcopy(LIVE_API), api()
    container(live)["env"].append({"name": "DATABASE_URL", "value": "postgres://app:old-pw@db:5432/shop"})
    container(p)["env"] += [
        {"name": "DATABASE_URL", "value": "postgres://app:new-pw@db:5432/shop"},
        {"name": "API_TOKEN", "value": "tok-3f9a8b7c6d"},
        {"name": "BANNER", "value": "x" * 2000},
    ]
    p["spec"]["template"]["spec"]["containers"].append(
        {"name": "agent", "image": "agent:2", "env": [{"name": "AGENT_PASSWORD", "value": "hunter22"}]}
    )
    container(p)["image"] = "registry.example.com/shop/api:1.4.2.1"  # a version, not an address to hide
    got = {c.path.rsplit(".", 1)[-1]: c for c in changes(live, p)}
    assert got["image"].after == "registry.example.com/shop/api:1.4.2.1"
    shown = json.dumps([c.model_dump() for c in got.values()])
    assert not any(s in shown for s in ("old-pw", "new-pw", "tok-3f9a8b7c6d", "hunter22")), shown
    url = got["value"]
    assert url.before.startswith("postgres://app:<") and url.before != url.after
    assert got["env[API_TOKEN]"].after.startswith("<SECRET")
    banner = got["env[BANNER]"].after
    assert len(banner) == 512 and banner.endswith("…")


def test_a_new_object_lists_no_changes_and_says_it_is_new():
    assert changes(None, api()) == []
    r = run(api(), None)
    assert not r.live and r.changes == []
    assert [f.message for f in found(r, "changes")] == ["Deployment api is new: the checks read it alone."]


# --- a clean change -------------------------------------------------------------------------------------------


def test_a_sound_deployment_with_fitting_usage_carries_no_risk():
    r = run(api())
    assert (r.object, r.live, r.risk, r.changes, r.override) == ("Deployment/default/api", True, "none", [], None)
    assert {f.severity for f in r.findings} == {"none"}
    assert [f.message for f in r.findings] == [
        "No field of spec differs from the live object.",
        "No SLO burn rate (slo:current_burn_rate:ratio) is recorded for this workload: its error budget is not "
        "checked.",
    ]
    assert r.recommendation == "Nothing found that makes this change risky."


# --- resources against usage ----------------------------------------------------------------------------------


def test_a_memory_limit_lowered_below_the_observed_peak_is_high_risk():
    p = api()
    container(p)["resources"] = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    r = run(p)
    assert r.risk == "high"
    (limit,) = found(r, "usage", f"{C}.resources.limits.memory")
    assert limit.severity == "high"
    assert limit.message.startswith(
        "Memory limit 512Mi (was 2Gi) of container api is below its observed peak working set 900Mi. Raise the "
        "memory limit of container api to at least 1080Mi (observed peak 900Mi) before shipping"
    )
    assert limit.evidence == [f"{Q} -> memory p95 700Mi, memory peak 900Mi, CPU p95 300m, CPU peak 800m"]
    (request,) = found(r, "usage", f"{C}.resources.requests.memory")
    assert request.severity == "medium" and "Memory request 256Mi (was 1Gi)" in request.message
    assert "at least 700Mi (observed p95)" in request.message
    assert r.recommendation.startswith("Raise the memory limit of container api to at least 1080Mi")
    assert r.findings[0] == limit


def test_memory_above_the_peak_and_p95_raises_nothing():
    p = api()
    container(p)["resources"]["limits"]["memory"] = "1Gi"  # lowered, but still above the 900Mi peak
    r = run(p)
    assert found(r, "usage") == [] and r.risk == "none"


def test_a_cpu_limit_below_p95_throttles():
    p = api()
    container(p)["resources"]["limits"]["cpu"] = "200m"
    container(p)["resources"]["requests"]["cpu"] = "200m"
    r = run(p)
    (limit,) = found(r, "usage", f"{C}.resources.limits.cpu")
    assert limit.severity == "medium"
    assert limit.message.startswith("CPU limit 200m (was 2) of container api is below its observed p95 CPU use 300m")
    assert "at least 800m (observed peak), or remove it" in limit.message
    assert found(r, "usage", f"{C}.resources.requests.cpu") == []  # 67% of p95: not far below


@pytest.mark.parametrize(("request_", "severity"), [("50m", "medium"), ("100m", "low"), ("180m", None)])
def test_a_cpu_request_far_below_p95(request_, severity):
    """Below half the p95: low; below a quarter: medium."""
    p = api()
    container(p)["resources"]["requests"]["cpu"] = request_
    hits = found(run(p), "usage", f"{C}.resources.requests.cpu")
    assert [f.severity for f in hits] == ([severity] if severity else [])


def test_requests_far_above_the_peak_are_waste_for_information():
    usage = {"api": Usage(cpu_p95=0.05, cpu_peak=0.1, memory_p95=150 * MI, memory_peak=200 * MI, query=Q)}
    r = run(api(), usage=usage)
    waste = found(r, "usage")
    assert {(f.path, f.severity) for f in waste} == {
        (f"{C}.resources.requests.memory", "none"),
        (f"{C}.resources.requests.cpu", "none"),
    }
    assert "Memory request 1Gi of container api is over 3x its observed peak 200Mi" in waste[0].message
    assert r.risk == "none"


def test_a_request_left_to_default_to_the_limit_is_checked_at_the_limit():
    p = api()
    container(p)["resources"] = {"limits": {"cpu": "2", "memory": "600Mi"}}
    r = run(p)
    assert found(r, "resources") == []  # limits alone: the requests default to them
    assert {(f.path, f.severity) for f in found(r, "usage")} == {
        (f"{C}.resources.limits.memory", "high"),  # 600Mi < 900Mi peak
        (f"{C}.resources.limits.memory", "medium"),  # as the request: 600Mi < 700Mi p95
    }


def test_usage_gaps_per_container_and_init_containers_left_out():
    usage = {"migrate": Usage(cpu_p95=8, cpu_peak=9, memory_p95=8 * GI, memory_peak=9 * GI)}
    r = run(api(), usage=usage)
    assert [(f.severity, f.message) for f in found(r, "usage")] == [
        ("none", "No usage observed for container api (new, or no samples): its resources are not checked against "
         "usage."),
    ]  # fmt: skip
    nan = {"api": Usage(cpu_p95=math.nan, cpu_peak=None, memory_p95=math.inf, memory_peak=math.nan)}
    assert found(run(api(), usage=nan), "usage") == []


# --- missing limits and probes --------------------------------------------------------------------------------


def test_missing_probes_and_limits():
    p = api()
    c = container(p)
    del c["readinessProbe"], c["livenessProbe"], c["resources"]["limits"]["memory"]
    r = run(p)
    assert {(f.check, f.severity, f.path) for f in r.findings if f.severity != "none"} == {
        ("probes", "medium", f"{C}.readinessProbe"),
        ("probes", "low", f"{C}.livenessProbe"),
        ("resources", "medium", f"{C}.resources.limits.memory"),
    }  # the init container has no probes and is not asked for any
    (limit,) = found(r, "resources")
    assert "Set a memory limit of at least 1080Mi (observed peak 900Mi) on container api" in limit.message
    del c["resources"]
    r = run(p)
    assert {f.severity for f in found(r, "resources")} == {"medium", "low"}
    assert "Container api requests no CPU or memory" in found(r, "resources", f"{C}.resources.requests")[0].message


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("nginx", False),
        ("nginx:latest", False),
        ("registry.example.com:5000/team/app", False),
        ("registry.example.com:5000/team/app:2.1.0", True),
        ("app@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7", True),
        ("app:latest@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7", True),
    ],
)
def test_an_image_without_a_version_is_a_finding(image, pinned):
    p = api()
    container(p)["image"] = image
    hits = found(run(p), "changes", f"{C}.image")
    assert [f.severity for f in hits] == ([] if pinned else ["medium"])


# --- disruption -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "blocks"),
    [
        ({"minAvailable": 3}, True),
        ({"minAvailable": "100%"}, True),
        ({"maxUnavailable": 0}, True),
        ({"maxUnavailable": "0%"}, True),
        ({"minAvailable": 2}, False),
        ({"minAvailable": "50%"}, False),  # 2 of 3 (rounded up): one may go
        ({"maxUnavailable": "10%"}, False),  # 0.3 rounded up: one may go
        ({"minAvailable": "67%"}, True),  # 2.01 rounded up: all 3 must stay
    ],
)
def test_a_disruption_budget_that_allows_no_eviction(spec, blocks):
    budget = pdb({**spec, "selector": {"matchLabels": {"app": "api"}}})
    hits = found(run(api(), pdbs=[budget]), "disruption")
    assert [f.severity for f in hits] == (["medium"] if blocks else [])
    if blocks:
        assert hits[0].message.startswith(f"PodDisruptionBudget default/api ({next(iter(spec))} ")
        assert hits[0].evidence[0].endswith('selector {"matchLabels": {"app": "api"}}')


def test_one_replica():
    r = run(db(), LIVE_DB, pdbs=[])
    assert [(f.severity, f.path) for f in found(r, "disruption")] == [("low", "spec.replicas")]
    budget = pdb({"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}, "db")
    assert [f.severity for f in found(run(db(), LIVE_DB, pdbs=[budget]), "disruption")] == ["medium"]
    assert found(run(db(), LIVE_DB, pdbs=[pdb({"maxUnavailable": 1, "selector": {}}, "db")]), "disruption") == []


def test_disruption_budgets_are_matched_by_their_selectors():
    labels = {"app": "api", "tier": "web"}
    assert matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "edge"]}]}, labels)
    assert matches({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, labels)
    assert matches({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, labels)
    assert matches({"matchExpressions": [{"key": "canary", "operator": "NotIn", "values": ["true"]}]}, labels)
    assert matches({}, labels)  # policy/v1: the empty selector selects every pod
    assert not matches({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels)
    assert not matches({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["batch"]}]}, labels)
    assert not matches({"matchExpressions": [{"key": "tier", "operator": "Like", "values": ["web"]}]}, labels)
    assert not matches(
        {"matchLabels": {"app": "api"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels
    )
    blocking = {"minAvailable": 3}
    selected = pdb(
        {**blocking, "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}}
    )
    other_pods = pdb({**blocking, "selector": {"matchLabels": {"app": "checkout"}}}, "checkout")
    null_selector = pdb(blocking, "none")  # selects nothing
    other_namespace = pdb({**blocking, "selector": {}}, "all", namespace="shop")
    hits = found(run(api(), pdbs=[selected, other_pods, null_selector, other_namespace]), "disruption")
    assert [f.evidence[0].split(":")[0] for f in hits] == ["PodDisruptionBudget default/api"]


def test_two_budgets_over_the_same_pods():
    budgets = [pdb({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "api"}}}, n) for n in ("a", "b")]
    (hit,) = found(run(api(), pdbs=budgets), "disruption")
    assert hit.severity == "medium" and hit.message.startswith("2 PodDisruptionBudgets select the pods of api")
    assert hit.evidence == ["PodDisruptionBudget default/a", "PodDisruptionBudget default/b"]


def test_scaling_to_zero():
    p = api()
    p["spec"]["replicas"] = 0
    r = run(p)
    assert r.risk == "high"
    assert [(f.severity, f.path) for f in found(r, "disruption")] == [("high", "spec.replicas")]
    assert "from 3 replicas to 0" in r.findings[0].message and OVERRIDE in r.recommendation
    assert [f.severity for f in found(run(p, None), "disruption")] == ["none"]  # a new object created stopped


def test_replicas_left_out_keep_the_live_count():
    p, live = api(), copy.deepcopy(LIVE_API)
    del p["spec"]["replicas"]
    live["spec"]["replicas"] = 1
    r = run(p, live, pdbs=[])
    assert r.changes == [] and [f.severity for f in found(r, "disruption")] == ["low"]
    assert found(run(p, pdbs=[]), "disruption") == []  # the live 3


# --- history --------------------------------------------------------------------------------------------------


def past(key: str, modes: list[str], when: datetime = MARCH, cause: str | None = None) -> PastChangeIncident:
    return PastChangeIncident(key=key, created_at=when, title=f"{key} failing", failure_modes=modes, root_cause=cause)


def lowered() -> dict:
    p = api()
    container(p)["resources"]["limits"]["memory"] = "1536Mi"  # still above the peak: only history speaks
    return p


def test_a_past_incident_that_followed_a_like_change():
    oom = past("default/api-oom", ["OOMKilled", "RecentRollout"], cause="api: OOMKilled. The limit was too low.")
    r = run(lowered(), past=[oom])
    (hit,) = found(r, "history")
    assert (hit.severity, r.risk) == ("medium", "medium")
    assert (
        "default/api-oom on 2026-03-01: OOMKilled (resources changed), RecentRollout (the pod template " in hit.message
    )
    assert hit.evidence == [
        "Incident default/api-oom 2026-03-01 09:30: default/api-oom failing; failure modes OOMKilled, RecentRollout; "
        "root cause: api: OOMKilled. The limit was too low."
    ]


def test_two_past_incidents_make_it_high():
    incidents = [past("default/a", ["CPUThrottling"]), past("default/b", ["Evicted"], datetime(2026, 4, 2, tzinfo=UTC))]
    (hit,) = found(run(lowered(), past=incidents), "history")
    assert hit.severity == "high"
    assert [e.split(" ")[1] for e in hit.evidence] == ["default/b", "default/a"]  # the latest first


@pytest.mark.parametrize(
    ("change", "modes", "related"),
    [
        ("resources", ["NodeNotReady", "DNSResolutionFailure"], False),
        ("resources", ["NodeNotReady", "LatencySpike", "ErrorLogs", "OOMKilled"], False),  # not among the top 3
        ("image", ["ImagePullAuthError"], True),
        ("image", ["OOMKilled"], False),
        ("env", ["MissingSecret"], True),
        ("probes", ["ReadinessProbeFailing"], True),
        ("annotation", ["RecentRollout"], True),  # any pod template change rolls the pods out
        ("replicas", ["RecentRollout"], False),
        ("replicas", ["HPAAtMaxReplicas"], True),
        ("none", ["OOMKilled", "RecentRollout"], False),
    ],
)
def test_which_past_failure_modes_a_change_relates_to(change, modes, related):
    p = api()
    c = container(p)
    if change == "resources":
        c["resources"]["limits"]["memory"] = "1536Mi"
    elif change == "image":
        c["image"] = "registry.example.com/shop/api:1.5.0"
    elif change == "env":
        c["env"][0]["value"] = "debug"
    elif change == "probes":
        c["readinessProbe"]["periodSeconds"] = 5
    elif change == "annotation":
        p["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-05-01"}
    elif change == "replicas":
        p["spec"]["replicas"] = 2
    hits = found(run(p, past=[past("default/x", modes)]), "history")
    assert len(hits) == int(related)


def test_a_new_object_has_no_history_to_relate():
    assert found(run(api(), None, past=[past("default/x", ["OOMKilled", "RecentRollout"])]), "history") == []


# --- SLO ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "severity"), [(0.5, "none"), (1.0, "none"), (2.5, "medium"), (14.4, "medium"), (20, "high")]
)
def test_slo_burn(rate, severity):
    q = 'slo:current_burn_rate:ratio{sloth_slo="api-availability",namespace="default"}'
    (hit,) = found(run(api(), burns=[Burn("api-availability", rate, q)]), "slo")
    assert hit.severity == severity and hit.evidence == [f"{q} = {rate:.4g}"]
    assert hit.message.startswith("SLO api-availability burns")


def test_an_slo_without_a_current_rate():
    (hit,) = found(run(api(), burns=[Burn("api-latency", math.nan, "q")]), "slo")
    assert (hit.severity, hit.message) == ("none", "SLO api-latency has no current burn rate.")


# --- gaps, override, caps, risk -------------------------------------------------------------------------------


def test_a_source_that_was_not_available_says_so():
    r = run(
        api(),
        usage=None,
        past=None,
        burns=None,
        usage_gap="no Prometheus configured",
        history_gap="history is off",
        slo_gap="no Prometheus configured",
    )
    gaps = {f.check: (f.severity, f.message) for f in r.findings if "not checked" in f.message}
    assert gaps == {
        "usage": ("none", "Requests and limits against observed usage: not checked (no Prometheus configured)."),
        "history": ("none", "Past Incidents of this workload: not checked (history is off)."),
        "slo": ("none", "The SLO error budget: not checked (no Prometheus configured)."),
    }
    assert r.recommendation == "Nothing found that makes this change risky. Not checked: usage, history, slo."


def test_the_override_annotation_gives_the_reason_and_the_risk_stays():
    p = api()
    p["spec"]["replicas"] = 0
    p["metadata"]["annotations"] = {OVERRIDE: "  planned maintenance window, CHG-1234 "}
    r = run(p)
    assert OVERRIDE == "aiops.dev/change-review-override"
    assert (r.override, r.risk) == ("planned maintenance window, CHG-1234", "high")
    p["metadata"]["annotations"] = {OVERRIDE: " "}
    r = run(p)
    assert r.override is None
    assert any(f.message == f"The {OVERRIDE} annotation is empty: an override needs a reason." for f in r.findings)


def test_findings_are_capped_most_severe_first():
    p = api()
    bare = [{"name": f"worker-{i}", "image": f"registry.example.com/shop/worker:{i}"} for i in range(30)]
    p["spec"]["template"]["spec"]["containers"] += bare  # each: no limit, no requests, no probes, no usage
    r = run(p)
    assert len(r.findings) == 50
    ranks = ["none", "low", "medium", "high"]
    severities = [ranks.index(f.severity) for f in r.findings]
    assert severities == sorted(severities, reverse=True) and severities[0] == 2 and r.risk == "medium"
    # 30 x (2 medium, 2 low, 1 none) + the SLO note: the 49 most severe, then what was left out
    assert r.findings[-1].message == "102 more findings not listed."
    assert r.recommendation == (
        "Set a memory limit on container worker-0: without one, a leak in it takes memory from every pod on its "
        "node. Add a readinessProbe to container worker-0: without one, Services send traffic to pods before they "
        "can serve, and a rollout of broken pods carries on."
    )


def test_changes_are_capped():
    p, live = api(), copy.deepcopy(LIVE_API)
    container(live)["env"] = [{"name": f"V{i}", "value": "a"} for i in range(150)]
    container(p)["env"] = [{"name": f"V{i}", "value": "b"} for i in range(150)]
    r = run(p, live)
    assert len(r.changes) == 100 and r.changes[-1].path == f"{C}.env[V99].value"
    assert "150 fields changed; the first 100 are listed." in [f.message for f in r.findings]


def test_a_statefulset():
    p = db()
    c = p["spec"]["template"]["spec"]["containers"][0]
    c["resources"] = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "384Mi"}}
    usage = {"postgres": Usage(cpu_p95=0.1, cpu_peak=0.4, memory_p95=300 * MI, memory_peak=610 * MI, query=Q)}
    r = run(p, LIVE_DB, usage=usage, pdbs=[])
    assert (r.object, r.risk) == ("StatefulSet/default/db", "high")
    pc = "spec.template.spec.containers[postgres]"
    assert {(c.path, c.before, c.after) for c in r.changes} == {
        (f"{pc}.resources.requests.memory", "512Mi", "256Mi"),
        (f"{pc}.resources.limits.memory", "1Gi", "384Mi"),
    }
    assert {(f.check, f.severity) for f in r.findings} == {
        ("usage", "high"),  # 384Mi < 610Mi peak
        ("usage", "medium"),  # 256Mi < 300Mi p95
        ("probes", "low"),  # no livenessProbe
        ("disruption", "low"),  # 1 replica, no budget
        ("slo", "none"),
    }
    assert r.recommendation.startswith("Raise the memory limit of container postgres to at least 732Mi")


# --- bad input ------------------------------------------------------------------------------------------------


def _set(path: str, value):
    def apply(obj: dict) -> None:
        *parents, last = path.split(".")
        for part in parents:
            obj = next(c for c in obj["containers"] if c["name"] == "api") if part == "api" else obj[part]
        if value is KeyError:
            del obj[last]
        else:
            obj[last] = value

    return apply


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("spec.template.spec.api.resources", {"limits": {"memory": "2Gb"}}),
         f"{C}.resources.limits.memory: '2Gb' is not a Kubernetes quantity"),
        (_set("spec.template.spec.api.resources", {"requests": {"memory": "4Gi"}, "limits": {"memory": "2Gi"}}),
         f"{C}.resources.requests.memory: 4Gi must not exceed its limit 2Gi"),
        (_set("spec.replicas", "3"), "spec.replicas: must be an integer"),
        (_set("spec.template.spec.containers", []), "spec.template.spec.containers: must be a list of at least one"),
        (_set("spec.template.spec.initContainers", [{"name": "api", "image": "x:1"}]),
         "spec.template.spec: container names must be unique across containers and initContainers: ['api']"),
        (_set("spec.template.spec.api.image", KeyError), f"{C}.image: required"),
        (_set("spec.template.spec.api.readinessProbe", "/ready"), f"{C}.readinessProbe: must be a mapping"),
        (_set("spec.template", KeyError), "spec.template: required"),
        (_set("metadata.annotations", {"team": 7}), "metadata.annotations[team]: must be a string, not int"),
    ],
)  # fmt: skip
def test_an_object_the_api_server_would_refuse_is_an_error_naming_the_field(mutate, message):
    p = api()
    mutate(p)
    with pytest.raises(ValueError) as err:
        run(p)
    assert str(err.value).startswith(message)


API_DOC = yaml.safe_load(API)


@given(mutated(API_DOC, max_changes=4), st.one_of(st.none(), st.just(LIVE_API), mutated(LIVE_API, max_changes=3)))
def test_review_returns_a_review_or_names_the_bad_field(proposed, live):
    try:
        r = run(proposed, live)
    except ValueError as e:
        assert str(e).startswith(("spec", "metadata")), str(e)
        return
    ranks = ["none", "low", "medium", "high"]
    severities = [ranks.index(f.severity) for f in r.findings]
    assert severities == sorted(severities, reverse=True) and r.risk == r.findings[0].severity
    assert ChangeReview.model_validate(r.wire()) == r


def test_a_review_is_fast():
    p = api()
    container(p)["resources"]["limits"]["memory"] = "512Mi"
    container(p)["resources"]["requests"]["memory"] = "256Mi"
    container(p)["image"] = "registry.example.com/shop/api:1.5.0"
    incidents = [past(f"default/i{i}", ["OOMKilled", "RecentRollout"]) for i in range(20)]
    times = []
    for _ in range(20):
        start = time.perf_counter()
        run(p, past=incidents, burns=[Burn("api-availability", 2.0, "q")])
        times.append(time.perf_counter() - start)
    assert min(times) < 0.010, f"best of 20: {min(times) * 1000:.1f} ms"
