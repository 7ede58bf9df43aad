"""The disk cache of AWS price answers ([pricing] cache_dir, cache_ttl): one JSON file per region, each
answer stamped with its fetch time, so a weekly run makes a handful of calls."""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PriceCache:
    """Answers of the AWS APIs per region, one JSON file per region, each entry stamped with its fetch time.

    Entries older than ``ttl_seconds`` are refetched; "not found" answers are cached too, so an unknown
    type does not cost a call every run.
    """

    folder: Path
    ttl_seconds: float
    now: float = field(default_factory=lambda: time.time())

    def _file(self, partition_key: str) -> Path:
        return self.folder / f"aws-prices-{partition_key}.json"

    def load(self, key: str) -> dict:
        try:
            return json.loads(self._file(key).read_text())
        except (OSError, ValueError):
            return {}

    def fresh(self, data: dict, kind: str, name: str) -> tuple[bool, Any]:
        entry = data.get(kind, {}).get(name)
        if not entry or self.now - entry.get("fetched_at", 0) > self.ttl_seconds:
            return False, None
        return True, entry.get("value")

    def store(self, data: dict, kind: str, name: str, value: Any) -> None:
        data.setdefault(kind, {})[name] = {"value": value, "fetched_at": self.now}

    def save(self, key: str, data: dict) -> str | None:
        """Write atomically; returns an error text instead of failing the run when the folder is unwritable."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".aws-prices.", dir=self.folder)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self._file(key))
        except OSError as exc:
            return f"price cache {self.folder} not written: {exc.strerror or exc}"
        return None

    def oldest(self, data: dict) -> float | None:
        stamps = [e.get("fetched_at", 0) for kind in data.values() if isinstance(kind, dict)
                  for e in kind.values() if isinstance(e, dict)]
        return min(stamps) if stamps else None
