"""The package version, on the ground floor so that any module can state it."""

__version__ = "0.2.0"
