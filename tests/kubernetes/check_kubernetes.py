"""Validates the Kubernetes manifests under a directory (deploy/kubernetes) offline:

1. Every document of every *.yaml / *.yml file (kustomization files aside) against the
   Kubernetes JSON Schemas of the target version, strictly (an unknown field is an error),
   with kubernetes-validate, which ships the schemas in its wheel and resolves every `$ref`
   locally. A kind or apiVersion the version has no schema for (a typo, an API removed
   before it, a custom resource) is an error here, not kubernetes-validate's warning. A
   document without apiVersion, kind or metadata.name, and a mapping that repeats a key, are
   errors too. A patch file is validated like any manifest, so it must be one by itself (as
   a strategic-merge patch of a ConfigMap is); use an inline `patch:` otherwise.
2. Every kustomization.yaml (kind Kustomization or Component): known top-level keys only;
   `resources`, `components` and patch `path`s name local files (at or below its directory,
   as kustomize requires) or kustomization directories that exist; every manifest file of
   its directory is listed in `resources` or is a patch; every directory holding manifests
   has a kustomization.
3. This project's rules, on what each Kustomization puts together (its resources, other
   kustomizations' resources and its components', patches aside), on each file given with
   --manifests, and on what `kubectl kustomize` renders (with --kubectl):
   - a Deployment's selector matches its pod template's labels;
   - each Deployment container has a readinessProbe and a livenessProbe, and every probe's
     port is one the container declares;
   - drain timing: each Deployment container has a preStop delay of N seconds (exec
     `sleep N`, or the `sleep` action), and terminationGracePeriodSeconds (default 30) >
     N + SCIMBUS_SHUTDOWN_TIMEOUT_SECS + 10 s for background tasks (the timeout from the
     container's env or a ConfigMap it names in
     envFrom; default 30);
   - a ConfigMap named by envFrom or configMapKeyRef exists in the set (Secrets are created
     outside the manifests and are not looked for);
   - each Service, PodDisruptionBudget and NetworkPolicy selects the pods of a Deployment
     (or, for a NetworkPolicy, of a Job) in the set, and each Service targetPort is a port
     of those pods.

With --kubectl KUBECTL, each Kustomization is also rendered (`KUBECTL kustomize DIR`, local
files only) and the result checked by 1 and 3; so is each Component of the tree, enabled in
a copy of the Kustomization above it.

Usage:
    check_kubernetes.py --kubernetes-version 1.30.0 [--kubectl KUBECTL] DIR...
    check_kubernetes.py --kubernetes-version 1.30.0 --manifests FILE...
    check_kubernetes.py --kubernetes-version 1.30.0 --self-test DIR

--self-test DIR checks each DIR/valid/* and DIR/invalid/* (a manifest file: as with
--manifests; a directory: as a tree). Each valid one must pass; each invalid one must fail
with every message named on its `# expect: …` lines (for a directory, those of its
kustomization.yaml).
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from strict_yaml import StrictLoader  # noqa: E402 (tests/strict_yaml.py)

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_API = {
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("kustomize.config.k8s.io/v1alpha1", "Component"),
}
# The fields of kustomize v5's Kustomization (api/types/kustomization.go); deprecated ones
# (bases, patchesStrategicMerge, patchesJson6902, commonLabels, vars) are refused too.
KUSTOMIZE_KEYS = {
    "apiVersion", "kind", "metadata", "openAPI", "namePrefix", "nameSuffix", "namespace",
    "labels", "commonAnnotations", "buildMetadata", "patches", "images", "replacements",
    "replicas", "sortOptions", "resources", "components", "crds", "configMapGenerator",
    "secretGenerator", "helmCharts", "helmGlobals", "generatorOptions", "generators",
    "transformers", "validators",
}
SHUTDOWN_SETTING = "SCIMBUS_SHUTDOWN_TIMEOUT_SECS"
SHUTDOWN_DEFAULT = 30
# After the HTTP server stops, scimbus gives the relay and other background tasks up to
# this long to finish their step (src/startup.rs, BACKGROUND_STOP_TIMEOUT).
BACKGROUND_STOP_SECONDS = 10
GRACE_DEFAULT = 30  # Kubernetes' default terminationGracePeriodSeconds


class CheckError(Exception):
    pass


def rel(path: Path) -> str:
    """A path as given on the command line: relative to the working directory if under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- YAML without repeated keys (tests/strict_yaml.py) -------------------------------------
_Loader = StrictLoader


@dataclass
class Doc:
    source: str  # "file" or "file#2" for the second document
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "?"))

    @property
    def name(self) -> str:
        meta = self.body.get("metadata")
        return str(meta.get("name", "?")) if isinstance(meta, dict) else "?"

    def where(self) -> str:
        return f"{self.source} {self.kind}/{self.name}"


def load_docs(path: Path, label: str | None = None) -> list[Doc]:
    label = label or rel(path)
    try:
        loaded = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise CheckError(f"{label}: not readable YAML: {e}") from e
    docs = []
    for i, body in enumerate(loaded, start=1):
        if body is None:
            continue
        source = label if len(loaded) == 1 else f"{label}#{i}"
        if not isinstance(body, dict):
            raise CheckError(f"{source}: a document must be a mapping")
        docs.append(Doc(source, body))
    return docs


# --- 1. the schemas ---------------------------------------------------------------------------
def schema_errors(doc: Doc, version: str) -> list[str]:
    body = doc.body
    missing = [k for k in ("apiVersion", "kind") if not isinstance(body.get(k), str)]
    meta = body.get("metadata")
    if not (isinstance(meta, dict) and isinstance(meta.get("name"), str)):
        missing.append("metadata.name")
    if missing:
        return [f"{doc.where()}: no {', '.join(missing)}"]
    try:
        validated = kubernetes_validate.validate(body, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{doc.where()}: no schema for {body['kind']} {body['apiVersion']} in "
                f"Kubernetes {version} (a typo, an API version removed by then, or a custom "
                "resource, which this check cannot validate)"]
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path) or "(top)"
        return [f"{doc.where()}: {path}: {e.message}"]
    wanted = ".".join(version.split(".")[:2])
    if validated != wanted:
        return [f"{doc.where()}: validated against Kubernetes {validated}, not {wanted}"]
    return []


# --- 2. kustomizations ------------------------------------------------------------------------
def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def is_manifest(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.name not in KUSTOMIZATION_NAMES


@dataclass
class Kustomization:
    path: Path
    kind: str
    resources: list[Path]
    components: list[Path]
    patches: list[Path]
    body: dict[str, Any]


def read_kustomization(path: Path, errors: list[str]) -> Kustomization | None:
    try:
        docs = load_docs(path)
    except CheckError as e:
        errors.append(str(e))
        return None
    if len(docs) != 1:
        errors.append(f"{rel(path)}: must hold one document")
        return None
    body = docs[0].body
    api = (body.get("apiVersion"), body.get("kind"))
    if api not in KUSTOMIZE_API:
        errors.append(f"{rel(path)}: apiVersion/kind {api[0]}/{api[1]} is not a kustomization "
                      f"({', '.join('/'.join(a) for a in sorted(KUSTOMIZE_API))})")
        return None
    for key in sorted(set(body) - KUSTOMIZE_KEYS):
        errors.append(f"{rel(path)}: unknown key {key!r}")
    here = path.parent

    def entries(key: str) -> list[str]:
        value = body.get(key) or []
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            errors.append(f"{rel(path)}: {key} must be a list of paths")
            return []
        return value

    def local(entry: str, key: str) -> Path | None:
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            errors.append(f"{rel(path)}: {key} entry {entry} is remote: not checkable offline")
            return None
        target = (here / entry).resolve()
        if not target.exists():
            errors.append(f"{rel(path)}: {key} entry {entry} does not exist")
            return None
        if target.is_dir() and kustomization_file(target) is None:
            errors.append(f"{rel(path)}: {key} entry {entry} is a directory without a "
                          "kustomization")
            return None
        if target.is_file() and here.resolve() not in target.parents:
            errors.append(f"{rel(path)}: {key} entry {entry} is a file outside its directory "
                          "(kustomize refuses it)")
            return None
        return target

    resources = [p for e in entries("resources") if (p := local(e, "resources"))]
    components = [p for e in entries("components") if (p := local(e, "components"))]
    for c in components:
        if not c.is_dir():
            errors.append(f"{rel(path)}: components entry {rel(c)} is not a directory")
    patches = []
    for i, patch in enumerate(body.get("patches") or []):
        if not isinstance(patch, dict) or not ({"path", "patch"} & set(patch)):
            errors.append(f"{rel(path)}: patches[{i}] needs `path` or `patch`")
        elif "path" in patch and (p := local(str(patch["path"]), "patches")):
            patches.append(p)
    # Every manifest of the directory is listed, as a resource or a patch.
    listed = {p for p in resources + patches if p.is_file()}
    for file in sorted(here.iterdir()):
        if file.is_file() and is_manifest(file) and file.resolve() not in listed:
            errors.append(f"{rel(path)}: {file.name} is not listed in resources (nor a patch)")
    return Kustomization(path.resolve(), str(api[1]), resources, components, patches, body)


def tree_docs(root: Path, errors: list[str]) -> tuple[list[Doc], dict[Path, Kustomization]]:
    """Loads every manifest under root and every kustomization."""
    docs: list[Doc] = []
    kustomizations: dict[Path, Kustomization] = {}
    for directory in sorted([root, *[d for d in root.rglob("*") if d.is_dir()]]):
        manifests = sorted(f for f in directory.iterdir() if f.is_file() and is_manifest(f))
        kfile = kustomization_file(directory)
        if kfile is None:
            if manifests:
                errors.append(f"{rel(directory)}: manifests without a kustomization.yaml")
        elif (k := read_kustomization(kfile, errors)) is not None:
            kustomizations[directory.resolve()] = k
        for file in manifests:
            try:
                docs.extend(load_docs(file))
            except CheckError as e:
                errors.append(str(e))
    return docs, kustomizations


def assembled(directory: Path, ks: dict[Path, Kustomization], errors: list[str],
              seen: tuple[Path, ...] = ()) -> list[Doc]:
    """What a kustomization puts together: its resources and components, patches aside."""
    if directory in seen:
        errors.append(f"{rel(directory)}: kustomizations include each other")
        return []
    k = ks.get(directory)
    if k is None:  # outside the tree being checked
        errors.append(f"{rel(directory)}: a kustomization outside the checked tree")
        return []
    out: list[Doc] = []
    for target in k.resources + k.components:
        if target.is_dir():
            out.extend(assembled(target, ks, errors, (*seen, directory)))
        else:
            try:
                out.extend(load_docs(target))
            except CheckError:
                pass  # reported when the tree was loaded
    return out


# --- 3. project rules -------------------------------------------------------------------------
def pod_spec(doc: Doc) -> dict[str, Any] | None:
    if doc.kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        spec = (doc.body.get("spec") or {}).get("template", {}).get("spec")
        return spec if isinstance(spec, dict) else None
    return None


def pod_labels(doc: Doc) -> dict[str, str]:
    meta = ((doc.body.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return meta.get("labels") or {}


def selects(match: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def container_ports(container: dict[str, Any]) -> tuple[set[str], set[int]]:
    ports = container.get("ports") or []
    return ({p["name"] for p in ports if "name" in p},
            {p["containerPort"] for p in ports if "containerPort" in p})


def port_known(port: Any, names: set[str], numbers: set[int]) -> bool:
    return port in names if isinstance(port, str) else port in numbers


def sleep_seconds(container: dict[str, Any]) -> int | None:
    command = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec")
               or {}).get("command") or []
    if len(command) == 2 and Path(str(command[0])).name == "sleep":
        try:
            return int(command[1])
        except ValueError:
            return None
    sleep = (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {})
    return sleep.get("seconds") if isinstance(sleep.get("seconds"), int) else None


def setting(container: dict[str, Any], configmaps: dict[str, dict[str, Any]],
            name: str) -> str | None:
    value = None
    for source in container.get("envFrom") or []:  # later sources win
        ref = (source.get("configMapRef") or {}).get("name")
        prefix = source.get("prefix", "")
        data = (configmaps.get(ref) or {}).get("data") or {}
        for key, v in data.items():
            if prefix + key == name:
                value = v
    for env in container.get("env") or []:  # env wins over envFrom
        if env.get("name") == name and "value" in env:
            value = env["value"]
    return value


def rule_errors(docs: list[Doc]) -> list[str]:
    errors: list[str] = []
    configmaps = {d.name: d.body for d in docs if d.kind == "ConfigMap"}
    workloads = [d for d in docs if pod_spec(d) is not None]
    deployments = [d for d in workloads if d.kind == "Deployment"]

    for d in workloads:
        spec = pod_spec(d) or {}
        containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
        for c in containers:
            refs = [(s.get("configMapRef") or {}).get("name") for s in c.get("envFrom") or []]
            refs += [((e.get("valueFrom") or {}).get("configMapKeyRef") or {}).get("name")
                     for e in c.get("env") or []]
            for ref in refs:
                if ref and ref not in configmaps:
                    errors.append(f"{d.where()}: container {c.get('name')} names ConfigMap "
                                  f"{ref}, and there is no ConfigMap {ref} in the set")
        if d.kind != "Deployment":
            continue
        selector = ((d.body.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if not selects(selector, pod_labels(d)):
            errors.append(f"{d.where()}: selector.matchLabels does not match the pod "
                          "template's labels")
        grace = spec.get("terminationGracePeriodSeconds", GRACE_DEFAULT)
        for c in spec.get("containers") or []:
            cname = c.get("name")
            names, numbers = container_ports(c)
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    errors.append(f"{d.where()}: container {cname} has no {probe}")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                action = (c.get(probe) or {}).get("httpGet") or (c.get(probe) or {}).get(
                    "tcpSocket")
                if action and not port_known(action.get("port"), names, numbers):
                    errors.append(f"{d.where()}: container {cname}: {probe} port "
                                  f"{action.get('port')} is not a port the container declares")
            sleep = sleep_seconds(c)
            if sleep is None:
                errors.append(f"{d.where()}: container {cname} has no preStop sleep: load "
                              "balancers may still send requests after SIGTERM")
                continue
            raw = setting(c, configmaps, SHUTDOWN_SETTING)
            try:
                shutdown = int(raw) if raw is not None else SHUTDOWN_DEFAULT
            except ValueError:
                errors.append(f"{d.where()}: {SHUTDOWN_SETTING}={raw!r} is not a number")
                continue
            if not grace > sleep + shutdown + BACKGROUND_STOP_SECONDS:
                errors.append(f"{d.where()}: terminationGracePeriodSeconds {grace} must exceed "
                              f"the preStop sleep {sleep} + {SHUTDOWN_SETTING} {shutdown} + "
                              f"the background tasks' {BACKGROUND_STOP_SECONDS} s")

    for d in docs:
        spec = d.body.get("spec") or {}
        if d.kind == "Service" and spec.get("selector"):
            chosen = [w for w in deployments if selects(spec["selector"], pod_labels(w))]
            if not chosen:
                errors.append(f"{d.where()}: selector selects no Deployment's pods")
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                ok = any(port_known(target, *container_ports(c))
                         for w in chosen for c in (pod_spec(w) or {}).get("containers") or [])
                if chosen and not ok:
                    errors.append(f"{d.where()}: targetPort {target} is not a port of the "
                                  "pods it selects")
        elif d.kind == "PodDisruptionBudget":
            match = (spec.get("selector") or {}).get("matchLabels")
            if not any(selects(match, pod_labels(w)) for w in deployments):
                errors.append(f"{d.where()}: selector selects no Deployment's pods")
        elif d.kind == "NetworkPolicy":
            match = (spec.get("podSelector") or {}).get("matchLabels")
            if not any(selects(match, pod_labels(w)) for w in workloads):
                errors.append(f"{d.where()}: podSelector selects no pods of the set")
    return errors


# --- runs -------------------------------------------------------------------------------------
def check_docs(docs: list[Doc], version: str) -> list[str]:
    errors = [e for d in docs for e in schema_errors(d, version)]
    return errors + rule_errors(docs)


def render(kubectl: str, directory: Path, label: str, errors: list[str]) -> list[Doc]:
    run = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                         text=True, check=False)
    if run.returncode != 0:
        errors.append(f"{label}: kubectl kustomize failed: {run.stderr.strip()}")
        return []
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        out.write(run.stdout)
    try:
        return load_docs(Path(out.name), label)
    except CheckError as e:
        errors.append(str(e))
        return []
    finally:
        Path(out.name).unlink()


def check_tree(root: Path, version: str, kubectl: str | None) -> tuple[list[str], int]:
    errors: list[str] = []
    if not root.is_dir():
        return [f"{root}: not a directory"], 0
    docs, ks = tree_docs(root, errors)
    if not docs:
        errors.append(f"{root}: no manifests")
    for d in docs:
        errors.extend(schema_errors(d, version))
    checked = len(docs)
    for directory, k in ks.items():
        if k.kind == "Kustomization":
            errors.extend(rule_errors(assembled(directory, ks, errors)))
    if kubectl:
        for directory, k in ks.items():
            if k.kind == "Kustomization":
                label = f"kubectl kustomize {rel(directory)}"
                rendered = render(kubectl, directory, label, errors)
                errors.extend(check_docs(rendered, version))
                checked += len(rendered)
            else:
                rendered, label = render_component(kubectl, root, directory, ks, errors)
                errors.extend(check_docs(rendered, version))
                checked += len(rendered)
    return errors, checked


def render_component(kubectl: str, root: Path, component: Path,
                     ks: dict[Path, Kustomization], errors: list[str]) -> tuple[list[Doc], str]:
    """Renders the Kustomization above a Component with the Component enabled, in a copy."""
    base = component.parent
    while not (base in ks and ks[base].kind == "Kustomization"):
        if base == root.resolve() or base == base.parent:
            errors.append(f"{rel(component)}: a Component with no Kustomization above it")
            return [], str(component)
        base = base.parent
    label = f"kubectl kustomize {rel(base)} with components: [{component.relative_to(base)}]"
    with tempfile.TemporaryDirectory() as tmp:
        copy_root = Path(tmp) / "tree"
        shutil.copytree(root.resolve(), copy_root)
        kfile = copy_root / ks[base].path.relative_to(root.resolve())
        body = copy.deepcopy(ks[base].body)
        entry = str(component.relative_to(base))
        if entry not in (body.get("components") or []):
            body["components"] = [*(body.get("components") or []), entry]
        kfile.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
        return render(kubectl, kfile.parent, label, errors), label


def expectations(path: Path) -> list[str]:
    source = path / "kustomization.yaml" if path.is_dir() else path
    return [line.split("# expect:", 1)[1].strip()
            for line in source.read_text(encoding="utf-8").splitlines()
            if line.startswith("# expect:")]


def case_errors(case: Path, version: str) -> list[str]:
    if case.is_dir():
        return check_tree(case, version, None)[0]
    try:
        return check_docs(load_docs(case), version)
    except CheckError as e:
        return [str(e)]


def self_test(directory: Path, version: str) -> int:
    valid = sorted((directory / "valid").iterdir())
    invalid = sorted((directory / "invalid").iterdir())
    if not valid or not invalid:
        print(f"{directory}: no fixtures under valid/ or invalid/", file=sys.stderr)
        return 1
    failed = 0
    for case in valid:
        errors = case_errors(case, version)
        if errors:
            failed += 1
            print(f"SELF-TEST FAIL {rel(case)}: must pass; got {errors}", file=sys.stderr)
        else:
            print(f"{rel(case)}: passes as expected")
    for case in invalid:
        expected = expectations(case)
        if not expected:
            print(f"SELF-TEST FAIL {rel(case)}: no `# expect:` line", file=sys.stderr)
            failed += 1
            continue
        errors = case_errors(case, version)
        missing = [e for e in expected if not any(e in err for err in errors)]
        if not errors or missing:
            failed += 1
            print(f"SELF-TEST FAIL {rel(case)}: expected errors containing "
                  f"{missing or expected}; got {errors or 'none'}", file=sys.stderr)
        else:
            print(f"{rel(case)}: fails as expected ({len(errors)} error(s))")
    total = len(valid) + len(invalid)
    print(f"self-test: {total - failed} of {total} fixtures as expected ({len(valid)} valid, "
          f"{len(invalid)} invalid)")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("--kubectl", help="render each kustomization with KUBECTL kustomize")
    parser.add_argument("--manifests", action="store_true",
                        help="the paths are manifest files, checked as one set")
    parser.add_argument("--self-test", type=Path, metavar="DIR")
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    version = args.kubernetes_version
    if args.self_test:
        return self_test(args.self_test, version)
    if not args.paths:
        parser.error("name a directory or, with --manifests, files")
    rc = 0
    if args.manifests:
        try:
            docs = [d for p in args.paths for d in load_docs(p)]
            errors, checked = check_docs(docs, version), len(docs)
        except CheckError as e:
            errors, checked = [str(e)], 0
        rc |= report(" ".join(map(str, args.paths)), errors, checked, version)
    for root in [] if args.manifests else args.paths:
        errors, checked = check_tree(root, version, args.kubectl)
        rc |= report(str(root), errors, checked, version)
    return rc


def report(what: str, errors: list[str], checked: int, version: str) -> int:
    for e in errors:
        print(f"ERROR {e}", file=sys.stderr)
    if errors:
        print(f"{what}: {len(errors)} error(s)", file=sys.stderr)
        return 1
    print(f"{what}: OK ({checked} documents, Kubernetes {version} schemas, strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
