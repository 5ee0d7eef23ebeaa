"""Tests for pescador.version and the package version metadata."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import pescador
import pescador.version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.M)
    assert match, "pyproject.toml declares no static version"
    return match.group(1)


def test_version_values():
    # A version of its own, above the upstream 3.0.0 it is compatible with (docs/compat.md).
    assert pescador.version.version == "3.1.0"
    assert pescador.version.short_version == "3.1"


def test_version_is_above_the_upstream_release():
    parts = tuple(int(p) for p in pescador.version.version.split("."))
    assert parts > (3, 0, 0)
    assert parts[0] == 3  # compatible code that checks ``>= 3.0`` (and ``< 4``) keeps working


def test_short_version_is_major_minor():
    major, minor, *_ = pescador.version.version.split(".")
    assert pescador.version.short_version == f"{major}.{minor}"


def test_package_version():
    assert pescador.__version__ == pescador.version.version


def test_pyproject_matches():
    # pyproject.toml declares the version statically; it must agree with version.py.
    assert pyproject_version() == pescador.version.version


def test_installed_metadata_matches():
    installed = importlib.metadata.version("pescador")
    if installed != pyproject_version():
        pytest.skip(f"installed metadata ({installed}) predates pyproject.toml: reinstall")
    assert installed == pescador.version.version
