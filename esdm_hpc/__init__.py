"""esdm-hpc: the Earth System Data Middleware for HPC."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("esdm-hpc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
