"""Version information.

Examples
--------
>>> from pescador.version import short_version, version
>>> version.startswith(short_version)
True
"""

__all__ = ["short_version", "version"]

#: The full version string (API-compatible with pescador 3.0).
version = "3.0.0"
#: The major.minor part of :data:`version`.
short_version = "3.0"
