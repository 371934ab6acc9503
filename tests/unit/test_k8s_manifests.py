"""Offline checks of the deployment artefacts: infra/k8s/*.yaml and infra/Dockerfile.

Every Kubernetes object is validated against the official Kubernetes JSON schemas shipped
inside the ``kubernetes-validate`` package (strict variant: unknown fields are errors), for
the oldest cluster version we support and for the newest schemas the package ships. No
network is used. On top of the schemas, the tests pin the invariants the deployment relies
on: namespace, the seed's CronJob names, probes, non-root containers and the absence of
anything that looks like a real credential.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "infra" / "k8s"
DOCKERFILE = REPO_ROOT / "infra" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

NAMESPACE = "robson"
KUSTOMIZATION_FILE = "kustomization.yaml"
SECRET_TEMPLATE_FILE = "secrets.template.yaml"
PLACEHOLDER = "REPLACE_ME"
APP_UID = 10001
ROBSON_HOME = "/var/lib/robson"

# Oldest Kubernetes minor we deploy to; the newest schemas shipped are checked as well, so
# an API version that a later Kubernetes removed is caught too.
MIN_KUBERNETES_VERSION = "1.30.0"
SCHEMA_VERSIONS = sorted({MIN_KUBERNETES_VERSION, kubernetes_validate.latest_version()})

EXPECTED_FILES = {
    "namespace.yaml",
    "secrets.template.yaml",
    "configmap.yaml",
    "migrate-job.yaml",
    "api-deployment.yaml",
    "worker-deployment.yaml",
    "rbs-stop-monitor-cronjob.yaml",
    "rbs-trailing-stop-cronjob.yaml",
    KUSTOMIZATION_FILE,
}

EXPECTED_SECRETS: dict[str, set[str]] = {
    "rbs-django-secret": {
        "RBS_BINANCE_API_KEY_PROD",
        "RBS_BINANCE_SECRET_KEY_PROD",
        "RBS_BINANCE_API_KEY_TEST",
        "RBS_BINANCE_SECRET_KEY_TEST",
        "RBS_CREDENTIAL_ENCRYPTION_KEY",
    },
    "rbs-groq-secret": {"GROQ_API_KEY"},
    "rbs-database-secret": {"ROBSON_DATABASE_URL"},
}

EXPECTED_CONFIG = {
    "ROBSON_EXCHANGE": "binance",
    "BINANCE_USE_TESTNET": "True",
    "TRADING_ENABLED": "False",
    "ROBSON_POLL_SECONDS": "1",
    "ROBSON_RATE_LIMIT": "1000/hour",
    "ROBSON_AI_MODEL": "openai/gpt-oss-20b",
}

STOP_CRONJOBS = {
    "rbs-stop-monitor-cronjob": ["robson", "monitor-stops"],
    "rbs-trailing-stop-cronjob": ["robson", "adjust-trailing-stops"],
}

WORKLOAD_KINDS = {"Deployment", "Job", "CronJob", "StatefulSet", "DaemonSet", "Pod"}

# Names that denote a credential: matched as whole "_"-separated words, so that e.g.
# ROBSON_AI_MAX_TOKENS is fine while GROQ_API_KEY is not.
SENSITIVE_WORDS = {"KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASS", "CREDENTIALS"}
# The Dockerfile rule is stricter: any occurrence in an ENV/ARG name.
DOCKERFILE_SENSITIVE = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)

# What a real credential tends to look like: a vendor prefix, a PEM block, a long random
# looking run of key alphabet (Binance keys: 64 chars, Fernet keys: 44, hex keys: 64), or
# a URL with an inline password.
KEY_LIKE_PATTERNS = (
    re.compile(r"\b(gsk|sk|pk|rk|ghp|gho|github_pat|xox[abprs])[_-][A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAKIA[0-9A-Z]{12,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)
KEY_ALPHABET_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@\s]+:(?P<password>[^@\s]*)@")


@dataclass(frozen=True)
class Manifest:
    """One YAML document of infra/k8s/."""

    file: str
    index: int
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind"))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name"))

    @property
    def ref(self) -> str:
        return f"{self.file}#{self.index}:{self.kind}/{self.name}"


@dataclass(frozen=True)
class Container:
    """A container (or init container) together with the pod spec that runs it."""

    owner: Manifest
    pod_spec: dict[str, Any]
    spec: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.owner.ref}/{self.spec.get('name')}"

    @property
    def argv(self) -> list[str]:
        return argv_of(self.spec)


def argv_of(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


@functools.cache
def load_documents() -> tuple[Manifest, ...]:
    """Every non-empty YAML document under infra/k8s/ (kustomization included)."""
    documents: list[Manifest] = []
    files = sorted([*K8S_DIR.rglob("*.yaml"), *K8S_DIR.rglob("*.yml")])
    for path in files:
        name = path.relative_to(K8S_DIR).as_posix()
        for index, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc is None:
                continue
            assert isinstance(doc, dict), f"{name}#{index} is not a mapping"
            documents.append(Manifest(file=name, index=index, obj=doc))
    return tuple(documents)


def kubernetes_objects() -> list[Manifest]:
    """The documents that are Kubernetes API objects (everything but kustomization.yaml)."""
    return [m for m in load_documents() if m.file != KUSTOMIZATION_FILE]


def objects_of_kind(kind: str) -> dict[str, Manifest]:
    found = [m for m in kubernetes_objects() if m.kind == kind]
    by_name = {m.name: m for m in found}
    assert len(by_name) == len(found), f"duplicate {kind} names: {[m.ref for m in found]}"
    return by_name


def pod_spec_of(manifest: Manifest) -> dict[str, Any] | None:
    spec: dict[str, Any] = manifest.obj.get("spec") or {}
    if manifest.kind == "Pod":
        return spec
    if manifest.kind == "CronJob":
        pod_spec: dict[str, Any] = spec["jobTemplate"]["spec"]["template"]["spec"]
        return pod_spec
    if manifest.kind in WORKLOAD_KINDS:
        template_spec: dict[str, Any] = spec["template"]["spec"]
        return template_spec
    return None


def all_containers() -> list[Container]:
    containers: list[Container] = []
    for manifest in kubernetes_objects():
        pod_spec = pod_spec_of(manifest)
        if pod_spec is None:
            continue
        for key in ("initContainers", "containers", "ephemeralContainers"):
            containers.extend(
                Container(owner=manifest, pod_spec=pod_spec, spec=spec)
                for spec in pod_spec.get(key) or []
            )
    return containers


def only_container(manifest: Manifest) -> dict[str, Any]:
    pod_spec = pod_spec_of(manifest)
    assert pod_spec is not None, manifest.ref
    containers: list[dict[str, Any]] = pod_spec["containers"]
    assert len(containers) == 1, f"{manifest.ref}: expected exactly one container"
    return containers[0]


def effective_security(container: Container, field: str) -> Any:
    """A securityContext field as Kubernetes resolves it: the container's, else the pod's."""
    ctx: dict[str, Any] = container.spec.get("securityContext") or {}
    if field in ctx:
        return ctx[field]
    pod_ctx: dict[str, Any] = container.pod_spec.get("securityContext") or {}
    return pod_ctx.get(field)


def is_sensitive_name(name: str) -> bool:
    return any(word in SENSITIVE_WORDS for word in re.split(r"[^A-Za-z0-9]+", name.upper()))


def key_like_reason(value: str) -> str | None:
    """Why ``value`` looks like a real credential, or None if it does not."""
    match = URL_PASSWORD.match(value)
    if match and match.group("password") != PLACEHOLDER:
        return "URL with an inline password that is not the placeholder"
    stripped = value.replace(PLACEHOLDER, "")
    for pattern in KEY_LIKE_PATTERNS:
        hit = pattern.search(stripped)
        if hit:
            return f"matches {pattern.pattern!r} ({hit.group(0)[:6]}...)"
    for run in KEY_ALPHABET_RUN.findall(stripped):
        digits = sum(c.isdigit() for c in run)
        letters = sum(c.isalpha() for c in run)
        # A path such as /var/lib/robson/... is long but neither random nor a key.
        if digits >= 3 and letters >= 8 and not run.startswith("/"):
            return f"random-looking {len(run)}-character token ({run[:6]}...)"
    return None


# --------------------------------------------------------------------------------------
# Files and schemas
# --------------------------------------------------------------------------------------


def test_expected_manifest_files_exist() -> None:
    present = {p.relative_to(K8S_DIR).as_posix() for p in K8S_DIR.rglob("*.y*ml")}
    assert present >= EXPECTED_FILES, f"missing: {sorted(EXPECTED_FILES - present)}"


def test_every_document_is_a_kubernetes_object_or_the_kustomization() -> None:
    documents = load_documents()
    assert len(documents) >= len(EXPECTED_FILES)
    for manifest in documents:
        for field in ("apiVersion", "kind"):
            assert isinstance(manifest.obj.get(field), str), f"{manifest.ref}: no {field}"
        if manifest.file == KUSTOMIZATION_FILE:
            assert manifest.kind == "Kustomization"
        else:
            assert isinstance(manifest.obj.get("metadata", {}).get("name"), str), manifest.ref


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("manifest", kubernetes_objects(), ids=lambda m: m.ref)
def test_document_matches_official_kubernetes_schema(manifest: Manifest, version: str) -> None:
    try:
        kubernetes_validate.validate(manifest.obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        location = ".".join(str(part) for part in error.path) or "<root>"
        pytest.fail(f"{manifest.ref} invalid for Kubernetes {version}: {location}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(f"{manifest.ref}: {error.message}")


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = [m for m in load_documents() if m.file == KUSTOMIZATION_FILE]
    assert kustomization.obj["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization.obj["namespace"] == NAMESPACE
    resources: list[str] = kustomization.obj["resources"]
    assert len(resources) == len(set(resources)), "duplicate kustomization resources"
    for resource in resources:
        assert (K8S_DIR / resource).is_file(), f"kustomization lists missing {resource}"
    manifests = {m.file for m in kubernetes_objects()}
    # The template only holds placeholders: applying it would clobber the real Secrets.
    assert SECRET_TEMPLATE_FILE not in resources
    assert set(resources) == manifests - {SECRET_TEMPLATE_FILE}


# --------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------


def test_every_object_lives_in_the_robson_namespace() -> None:
    namespaces = objects_of_kind("Namespace")
    assert set(namespaces) == {NAMESPACE}
    for manifest in kubernetes_objects():
        if manifest.kind == "Namespace":
            continue
        assert manifest.obj["metadata"].get("namespace") == NAMESPACE, manifest.ref


@pytest.mark.parametrize("name", sorted(STOP_CRONJOBS))
def test_seed_stop_cronjobs(name: str) -> None:
    cronjobs = objects_of_kind("CronJob")
    assert name in cronjobs, f"CronJob {name} missing (have {sorted(cronjobs)})"
    cronjob = cronjobs[name]
    spec = cronjob.obj["spec"]
    assert spec["schedule"] == "* * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    # The long-lived worker does the same job: the CronJobs ship suspended.
    assert spec["suspend"] is True
    assert argv_of(only_container(cronjob)) == STOP_CRONJOBS[name]
    pod_spec = pod_spec_of(cronjob)
    assert pod_spec is not None
    assert pod_spec["restartPolicy"] == "Never"
    assert cronjob.file == f"{name}.yaml"


def test_only_the_seed_cronjobs_exist() -> None:
    assert set(objects_of_kind("CronJob")) == set(STOP_CRONJOBS)


def test_api_deployment_and_service() -> None:
    api = objects_of_kind("Deployment")["rbs-api"]
    assert api.obj["spec"]["replicas"] == 2
    container = only_container(api)
    assert argv_of(container) == [
        "robson",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--no-workers",
    ]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}

    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"
    assert liveness["path"] == "/healthz"
    for probe in (readiness, liveness):
        assert probe["port"] in ("http", 8000)

    assert "requests" in container["resources"]
    assert "limits" in container["resources"]

    service = objects_of_kind("Service")["rbs-api"]
    (port,) = service.obj["spec"]["ports"]
    assert port["port"] == 80
    assert port["targetPort"] in ("http", 8000)
    pod_labels: dict[str, str] = api.obj["spec"]["template"]["metadata"]["labels"]
    selector: dict[str, str] = service.obj["spec"]["selector"]
    assert selector.items() <= pod_labels.items(), "Service does not select the API pods"
    assert api.obj["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_worker_deployment() -> None:
    worker = objects_of_kind("Deployment")["rbs-worker"]
    spec = worker.obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30
    container = only_container(worker)
    assert argv_of(container) == ["robson", "worker"]
    assert "requests" in container["resources"]
    assert "limits" in container["resources"]


def test_migrate_job() -> None:
    job = objects_of_kind("Job")["rbs-migrate"]
    container = only_container(job)
    assert argv_of(container) == ["robson", "migrate"]
    pod_spec = pod_spec_of(job)
    assert pod_spec is not None
    assert pod_spec["restartPolicy"] in ("Never", "OnFailure")


def test_every_container_runs_as_non_root_without_privilege_escalation() -> None:
    containers = all_containers()
    assert len(containers) >= 5
    for container in containers:
        ctx: dict[str, Any] = container.spec.get("securityContext") or {}
        ref = container.ref
        assert effective_security(container, "runAsNonRoot") is True, f"{ref}: runAsNonRoot"
        assert effective_security(container, "runAsUser") == APP_UID, f"{ref}: runAsUser"
        assert effective_security(container, "runAsGroup") not in (0, None), f"{ref}: gid"
        assert ctx.get("allowPrivilegeEscalation") is False, f"{ref}: allowPrivilegeEscalation"
        assert ctx.get("privileged") in (None, False), f"{ref}: privileged"
        assert ctx.get("readOnlyRootFilesystem") is True, f"{ref}: readOnlyRootFilesystem"
        assert "ALL" in (ctx.get("capabilities") or {}).get("drop", []), f"{ref}: drop ALL"
        assert not (ctx.get("capabilities") or {}).get("add"), f"{ref}: capabilities added"
        seccomp = effective_security(container, "seccompProfile") or {}
        assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), f"{ref}: seccomp"
        assert container.pod_spec.get("hostNetwork") in (None, False), f"{ref}: hostNetwork"
        assert container.pod_spec.get("automountServiceAccountToken") is False, ref


def test_robson_home_is_a_writable_emptydir() -> None:
    for container in all_containers():
        env = {e["name"]: e.get("value") for e in container.spec.get("env") or []}
        assert env.get("ROBSON_HOME") == ROBSON_HOME, f"{container.ref}: ROBSON_HOME"
        mounts = {m["mountPath"]: m for m in container.spec.get("volumeMounts") or []}
        assert ROBSON_HOME in mounts, f"{container.ref}: no volume at {ROBSON_HOME}"
        mount = mounts[ROBSON_HOME]
        assert mount.get("readOnly") in (None, False), container.ref
        volumes = {v["name"]: v for v in container.pod_spec.get("volumes") or []}
        assert "emptyDir" in volumes[mount["name"]], f"{container.ref}: not an emptyDir"


def test_images_are_the_robson_image() -> None:
    for container in all_containers():
        image: str = container.spec["image"]
        assert image.rsplit(":", 1)[0].endswith("/robson"), f"{container.ref}: {image}"


def test_workloads_load_the_defined_config_and_secrets() -> None:
    config_maps = objects_of_kind("ConfigMap")
    secrets = objects_of_kind("Secret")
    for container in all_containers():
        sources = container.spec.get("envFrom") or []
        config_refs = {s["configMapRef"]["name"] for s in sources if "configMapRef" in s}
        secret_refs = {s["secretRef"]["name"] for s in sources if "secretRef" in s}
        assert "rbs-config" in config_refs, container.ref
        assert "rbs-database-secret" in secret_refs, container.ref
        assert config_refs <= set(config_maps), container.ref
        assert secret_refs <= set(secrets), container.ref
        for env in container.spec.get("env") or []:
            for ref_kind, defined in (("configMapKeyRef", config_maps), ("secretKeyRef", secrets)):
                ref = (env.get("valueFrom") or {}).get(ref_kind)
                if ref is not None:
                    assert ref["name"] in defined, f"{container.ref}: {ref['name']}"
    api_secrets = {
        s["secretRef"]["name"]
        for s in only_container(objects_of_kind("Deployment")["rbs-api"]).get("envFrom", [])
        if "secretRef" in s
    }
    assert api_secrets == set(EXPECTED_SECRETS)


def test_configmap_holds_the_expected_non_secret_settings() -> None:
    config = objects_of_kind("ConfigMap")["rbs-config"]
    assert config.obj["data"] == EXPECTED_CONFIG
    assert "binaryData" not in config.obj


def test_secret_template_holds_only_placeholders() -> None:
    secrets = objects_of_kind("Secret")
    assert set(secrets) == set(EXPECTED_SECRETS)
    for name, keys in EXPECTED_SECRETS.items():
        secret = secrets[name]
        assert secret.file == SECRET_TEMPLATE_FILE, secret.ref
        assert "data" not in secret.obj, f"{secret.ref}: use stringData placeholders"
        string_data: dict[str, str] = secret.obj["stringData"]
        assert set(string_data) == keys, secret.ref
        for key, value in string_data.items():
            assert PLACEHOLDER in value, f"{secret.ref}: {key} is not a placeholder"
    database_url = secrets["rbs-database-secret"].obj["stringData"]["ROBSON_DATABASE_URL"]
    assert database_url == "postgresql://robson:REPLACE_ME@postgres.robson.svc:5432/robson"


def iter_literal_values() -> Iterator[tuple[str, str, str]]:
    """(where, name, value) for every literal value a pod could receive as configuration."""
    for manifest in kubernetes_objects():
        if manifest.kind == "ConfigMap":
            for key, value in (manifest.obj.get("data") or {}).items():
                yield manifest.ref, key, str(value)
        if manifest.kind == "Secret":
            for key, value in (manifest.obj.get("stringData") or {}).items():
                yield manifest.ref, key, str(value)
            for key, value in (manifest.obj.get("data") or {}).items():
                try:
                    decoded = base64.b64decode(str(value), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    decoded = str(value)
                yield manifest.ref, key, decoded
    for container in all_containers():
        for env in container.spec.get("env") or []:
            if "value" in env:
                yield container.ref, env["name"], str(env["value"])
        for arg in container.argv:
            yield container.ref, "argv", arg


def test_no_value_looks_like_a_real_credential() -> None:
    values = list(iter_literal_values())
    assert values, "nothing was checked"
    for where, name, value in values:
        reason = key_like_reason(value)
        assert reason is None, f"{where}: {name} looks like a real credential: {reason}"


def test_credentials_only_come_from_secrets() -> None:
    for manifest in kubernetes_objects():
        if manifest.kind == "ConfigMap":
            for key in manifest.obj.get("data") or {}:
                assert not is_sensitive_name(key), f"{manifest.ref}: {key} belongs in a Secret"
    for container in all_containers():
        for env in container.spec.get("env") or []:
            if is_sensitive_name(env["name"]):
                assert "value" not in env, f"{container.ref}: {env['name']} has a literal value"
                assert "secretKeyRef" in (env.get("valueFrom") or {}), container.ref


def test_key_like_detector_catches_real_looking_values() -> None:
    # Guards the guard: the detector must flag realistic credentials and pass placeholders.
    # Realistic shapes, generated so that no key-like literal sits in the repository.
    fake_fernet = base64.urlsafe_b64encode(hashlib.sha256(b"fernet").digest()).decode()
    fake_hex = hashlib.sha256(b"hex").hexdigest()
    alphabet = base64.b64encode(hashlib.sha512(b"binance").digest()).decode()
    fake_binance = "".join(c for c in alphabet if c.isalnum())[:64]
    flagged = [
        fake_fernet,
        fake_binance,
        fake_hex,
        "gsk_" + "a1B2" * 13,
        "postgresql://robson:hunter2@db:5432/robson",
        "-----BEGIN RSA PRIVATE KEY-----",
    ]
    for value in flagged:
        assert key_like_reason(value) is not None, value
    passed = [
        PLACEHOLDER,
        "/var/lib/robson/projections/cache-v2025",
        "PIP_DISABLE_PIP_VERSION_CHECK_AND_MORE=1",
        "postgresql://robson:REPLACE_ME@postgres.robson.svc:5432/robson",
        *EXPECTED_CONFIG.values(),
    ]
    for value in passed:
        assert key_like_reason(value) is None, value
    assert is_sensitive_name("GROQ_API_KEY")
    assert is_sensitive_name("RBS_CREDENTIAL_ENCRYPTION_KEY")
    assert not is_sensitive_name("ROBSON_AI_MAX_TOKENS")


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile, with comments dropped and continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, arguments = full.partition(" ")
            instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def declared_variables(instruction: Instruction) -> list[tuple[str, str]]:
    """(name, value) pairs an ENV or ARG instruction declares (ARG without default: "")."""
    words = shlex.split(instruction.arguments)
    if instruction.keyword == "ENV" and words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]  # legacy form: ENV NAME value
    pairs: list[tuple[str, str]] = []
    for word in words:
        name, _, value = word.partition("=")
        pairs.append((name, value))
    return pairs


@functools.cache
def dockerfile() -> tuple[Instruction, ...]:
    return tuple(dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")))


def final_stage() -> list[Instruction]:
    instructions = list(dockerfile())
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def stages() -> dict[str, list[Instruction]]:
    """Each stage's instructions after its FROM, by the stage's name (`AS name`)."""
    named: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            current = named.setdefault(instruction.arguments.split()[-1], [])
        current.append(instruction)
    return named


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    # Every stage but the dashboard's assets (built with node) runs the project's Python.
    bases = [
        ins.arguments.split()[0]
        for name, stage in stages().items()
        if name != "assets"
        for ins in stage
        if ins.keyword == "FROM"
    ]
    assert len(bases) >= 2, "expected a builder and a runtime stage"
    assert all(base.startswith("python:3.11-slim") for base in bases), bases
    assert any("pip wheel" in ins.arguments for ins in dockerfile() if ins.keyword == "RUN")


def test_dockerfile_builds_the_dashboard_assets_into_the_package() -> None:
    """They are git-ignored (`make install` builds them): the image builds its own, so its `/`
    serves the dashboard instead of the page that says the assets are missing."""
    named = stages()
    assets = [ins.arguments for ins in named["assets"]]
    assert assets[0].startswith("node:")
    assert any(a.startswith("npm ci") for a in assets), assets
    assert any("copy-assets.sh /static" in a for a in assets), assets
    builder = [(ins.keyword, ins.arguments) for ins in named["builder"]]
    copied = builder.index(("COPY", "--from=assets /static ./api/web/static"))
    wheel = next(i for i, (k, a) in enumerate(builder) if k == "RUN" and "pip wheel" in a)
    assert copied < wheel, "the assets must be in place before the wheel is built"
    runtime = [ins.arguments for ins in final_stage() if ins.keyword == "RUN"]
    assert any("missing_assets" in run for run in runtime), "the build checks they arrived"
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert {"web/node_modules", "api/web/static"} <= ignored  # built in the image, never sent
    assert not {"web", "web/src", "web/package-lock.json"} & ignored


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [ins.arguments for ins in final_stage() if ins.keyword == "USER"]
    assert users, "the runtime stage has no USER"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0")
    assert user == str(APP_UID), "use the numeric uid so runAsNonRoot can verify it"


def test_dockerfile_bakes_in_no_secrets() -> None:
    for instruction in dockerfile():
        if instruction.keyword not in ("ENV", "ARG"):
            continue
        for name, value in declared_variables(instruction):
            assert not DOCKERFILE_SENSITIVE.search(name), f"{instruction.keyword} {name}"
            assert key_like_reason(value) is None, f"{instruction.keyword} {name}"


def test_dockerfile_runtime_contract() -> None:
    stage = final_stage()
    env = dict(pair for ins in stage if ins.keyword == "ENV" for pair in declared_variables(ins))
    assert env.get("ROBSON_HOME") == ROBSON_HOME
    assert any(ins.keyword == "EXPOSE" and "8000" in ins.arguments.split() for ins in stage)
    healthchecks = [ins.arguments for ins in stage if ins.keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    assert "python" in healthchecks[0]
    assert "curl" not in healthchecks[0]
    (entrypoint,) = [ins.arguments for ins in stage if ins.keyword == "ENTRYPOINT"]
    assert entrypoint == '["robson"]'
    (cmd,) = [ins.arguments for ins in stage if ins.keyword == "CMD"]
    assert cmd == '["serve", "--host", "0.0.0.0", "--port", "8000"]'


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    for required in (".venv", "var", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"):
        assert required in entries, f".dockerignore lacks {required}"
    assert "**/__pycache__" in entries or "__pycache__" in entries
    assert "tests" in entries or "tests/bench" in entries
