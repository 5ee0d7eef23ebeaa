"""Version information.

Examples
--------
>>> from pescador.version import short_version, version
>>> version.startswith(short_version)
True
"""

__all__ = ["short_version", "version"]

#: The full version string: this library's own release, API-compatible with pescador 3.0 (so
#: code that checks ``version >= "3.0"`` keeps working; see docs/compat.md, "Versions").
version = "3.1.0"
#: The major.minor part of :data:`version`.
short_version = "3.1"
