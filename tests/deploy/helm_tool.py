"""Lint, render and schema-check the Helm chart; runs under .venv-helm's Python 3.12, not pytest's.

Usage: python helm_tool.py CHART_DIR KUBE_VERSION < values.json

Prints one JSON object: {"lint": lint report, "error": render error or null,
"manifests": {template path: rendered text}, "invalid": [Kubernetes schema errors]}.
It exits 0 whenever it produced that report; tests decide what it means.
"""

from __future__ import annotations

import json
import sys

import helm_python
import kubernetes_validate
import yaml


def _schema_errors(manifests: dict[str, str], kube_version: str) -> list[str]:
    errors = []
    for path, text in manifests.items():
        if not path.endswith(".yaml"):
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            errors.append(f"{path}: not YAML: {exc}")
            continue
        for document in documents:
            if not document:
                continue
            try:
                kubernetes_validate.validate(document, kube_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{path}: {document.get('kind')}: {exc.message} at {list(exc.path)}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{path}: no schema: {exc}")
    return errors


def main() -> None:
    chart_dir, kube_version = sys.argv[1], sys.argv[2]
    values = json.load(sys.stdin)
    report: dict[str, object] = {"error": None, "manifests": {}, "invalid": []}
    report["lint"] = helm_python.lint(
        chart_dir, values, strict=True, namespace="rdev", kube_version=f"v{kube_version}"
    )
    try:
        chart = helm_python.Chart.load(chart_dir)
        chart.validate_schema(values)
        manifests = chart.render(values, name="rel", namespace="rdev", is_install=True)
    except helm_python.HelmError as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
    else:
        report["manifests"] = manifests
        report["invalid"] = _schema_errors(manifests, kube_version)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
