"""tokenbot: governs Databricks personal access tokens from Slack."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tokenbot")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
