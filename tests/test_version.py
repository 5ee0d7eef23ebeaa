"""Tests for pescador.version and the package version metadata."""

from __future__ import annotations

import importlib.metadata

import pescador
import pescador.version


def test_version_values():
    assert pescador.version.version == "3.0.0"
    assert pescador.version.short_version == "3.0"


def test_short_version_is_major_minor():
    major, minor, *_ = pescador.version.version.split(".")
    assert pescador.version.short_version == f"{major}.{minor}"


def test_package_version():
    assert pescador.__version__ == pescador.version.version


def test_installed_metadata_matches():
    # pyproject.toml declares the version statically; it must agree with version.py.
    assert importlib.metadata.version("pescador") == pescador.version.version
