"""The Dockerfile builds the image kuberay.yaml runs (issue 13: the manifest named `graphrec-ray:0.1.0`, but nothing
in the project made that image). No Docker daemon here, so the test checks what the build depends on: the pins, the
paths the manifest points into, and a build context without data or artifacts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _pin(name: str) -> str:
    (line,) = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines() if ln.startswith(f"{name}==")]
    return line.split("==", 1)[1].strip()


def test_base_image_carries_the_pinned_ray_and_python() -> None:
    """A Serve config built by one Ray version must be deployed by the same one (kuberay.yaml is serve build's
    output): the base image's Ray, constraints.txt and jobs.kuberay.RAY_VERSION agree; Python matches pyproject."""
    from jobs.kuberay import RAY_VERSION

    text = _dockerfile()
    (arg,) = re.findall(r"^ARG RAY_VERSION=(\S+)$", text, flags=re.M)
    (base,) = re.findall(r"^FROM (\S+)$", text, flags=re.M)
    assert arg == _pin("ray") == RAY_VERSION
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert base == "rayproject/ray:${RAY_VERSION}-py311-cpu" and ">=3.11,<3.12" == requires
    assert f"torch=={_pin('torch')}" in text and "download.pytorch.org/whl/cpu" in text  # CPU wheel, not CUDA


def test_image_holds_what_the_manifest_points_into() -> None:
    """kuberay.yaml's serveConfigV2 imports serve_app from the project folder and reads configs/serve.yaml there;
    the image's WORKDIR is that folder, every installed package and configs/ are copied, the install is editable
    (relative Serve paths resolve against the project folder) and the default tag is pyproject's version."""
    from jobs.kuberay import DEFAULTS

    text = _dockerfile()
    project_dir = str(DEFAULTS["project_dir"][0])
    assert re.findall(r"^WORKDIR (\S+)$", text, flags=re.M) == [project_dir]
    copied = set(re.findall(r"^COPY \S+ (\w+)/ \1/$", text, flags=re.M))
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {p.rstrip("*") for p in packages["include"]} | {"configs"} <= copied
    assert "-e ." in text
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert DEFAULTS["image"][0] == f"graphrec-ray:{version}"
    manifest = yaml.safe_load((ROOT / "kuberay.yaml").read_text())
    serve = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    config = Path(serve["applications"][0]["args"]["config"])
    assert config.is_relative_to(project_dir) and (ROOT / config.relative_to(project_dir)).is_file()


def test_build_context_leaves_out_data_runs_and_artifacts() -> None:
    """Every generated path .gitignore keeps out of the repository stays out of the image too."""
    ignored = {ln.strip().strip("/") for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    generated = {ln.strip().strip("/") for ln in (ROOT / ".gitignore").read_text().splitlines()
                 if ln.strip() and not ln.startswith("#")}
    assert {"data", "runs", "outputs", "mlruns", ".venv", ".git"} <= ignored
    assert {g for g in generated if g not in ignored and f"**/{g}" not in ignored} == set()
