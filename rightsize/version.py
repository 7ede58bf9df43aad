"""rightsize's version (as in pyproject.toml), for meta.json and --version; the package exports it."""
__version__ = "0.1.0"
