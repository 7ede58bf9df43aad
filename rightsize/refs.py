"""WorkloadRef: the one parser and formatter of workload references.

A workload is identified by (cluster, namespace, kind, name), a container by that plus its name. As
text (command-line options, ``[[overrides]] workload``, messages):

    NAMESPACE/KIND/NAME                  shop/Deployment/web
    CLUSTER/NAMESPACE/KIND/NAME          eu-1/shop/Deployment/web
    NAMESPACE/NAME                       shop/web (only where the kind can be looked up in a snapshot)
    ...:CONTAINER                        shop/Deployment/web:app (only where a container can be named)

A container name cannot hold ':' and a Kubernetes object name cannot hold '/' or ':', so the forms do
not overlap. Kinds match case-insensitively (``deployment`` names a Deployment).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ConfigError

FORMS = "NAMESPACE/KIND/NAME or CLUSTER/NAMESPACE/KIND/NAME"


def forms(*, short: bool = False, container: bool = False) -> str:
    """The accepted forms as text, for help and error messages."""
    text = FORMS + (" (or NAMESPACE/NAME)" if short else "")
    return text + (", optionally followed by :CONTAINER" if container else "")


@dataclass(frozen=True)
class WorkloadRef:
    """One workload (or one container of it). Empty ``cluster`` = any cluster, empty ``kind`` = any kind
    (the NAMESPACE/NAME form), empty ``container`` = every container."""

    namespace: str
    kind: str
    name: str
    cluster: str = ""
    container: str = ""

    @classmethod
    def parse(cls, text: str, *, what: str = "workload", short: bool = False, container: bool = False) -> "WorkloadRef":
        """Parse one reference; ConfigError naming ``what`` (e.g. '--explain') and the forms accepted.

        ``short``: also accept NAMESPACE/NAME (kind left empty). ``container``: accept a :CONTAINER suffix.
        """
        raw = str(text).strip()
        suffixed = ":" in raw.rsplit("/", 1)[-1]
        body, _, cont = raw.rpartition(":") if suffixed else (raw, "", "")
        parts = body.split("/")
        allowed = (2, 3, 4) if short else (3, 4)
        if len(parts) not in allowed or not all(p.strip() for p in parts) or (suffixed and (not container or not cont.strip())):
            raise ConfigError(f"{what}: expected {forms(short=short, container=container)}, got {text!r}")
        if len(parts) == 2:
            return cls(parts[0], "", parts[1], container=cont)
        return cls(*parts[-3:], cluster=parts[0] if len(parts) == 4 else "", container=cont)

    @classmethod
    def of(cls, row) -> "WorkloadRef":
        """The reference of a table row (a mapping or a namedtuple with cluster, namespace, kind, workload
        and optionally container)."""
        get = row.get if hasattr(row, "get") else (lambda k, d="": getattr(row, k, d))
        return cls(str(get("namespace", "")), str(get("kind", "")), str(get("workload", "")),
                   cluster=str(get("cluster", "") or ""), container=str(get("container", "") or ""))

    def __str__(self) -> str:
        text = "/".join(p for p in (self.cluster, self.namespace, self.kind, self.name) if p)
        return f"{text}:{self.container}" if self.container else text

    def workload(self) -> "WorkloadRef":
        """The same reference without its container."""
        return WorkloadRef(self.namespace, self.kind, self.name, cluster=self.cluster)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` (columns namespace, kind, workload; cluster and container when named) that
        this reference names."""
        hit = (frame["namespace"] == self.namespace) & (frame["workload"] == self.name)
        if self.kind:
            hit &= frame["kind"].astype(str).str.lower() == self.kind.lower()
        if self.cluster:
            hit &= frame["cluster"] == self.cluster
        if self.container and "container" in frame.columns:
            hit &= frame["container"] == self.container
        return hit.to_numpy(dtype=bool)


def refs_text(frame: pd.DataFrame, *, cluster: bool = False, container: bool = False) -> pd.Series:
    """The reference of every row of ``frame`` as text (vectorised :meth:`WorkloadRef.__str__`)."""
    text = frame["namespace"].astype(str) + "/" + frame["kind"].astype(str) + "/" + frame["workload"].astype(str)
    if cluster:
        text = frame["cluster"].astype(str) + "/" + text
    if container:
        text = text + ":" + frame["container"].astype(str)
    return text
