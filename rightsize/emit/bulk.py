"""Table rows for a report's or a patch set's bulk building (the collector's policy while they are built:
memory.bulk)."""
from __future__ import annotations

import pandas as pd


def records(df: pd.DataFrame) -> list[dict]:
    """``df.to_dict("records")``, the same values: string columns are turned into object columns first, in one
    vectorised step, because pandas reads an Arrow-backed column into records one Python call per value (20,400
    recommendation rows of 100 columns: 1.1 s against 0.6 s)."""
    text = {c: object for c, dtype in df.dtypes.items() if isinstance(dtype, pd.StringDtype)}
    return (df.astype(text) if text else df).to_dict("records")
