"""Shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, which puts this folder on the path)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def save_results(path: str | os.PathLike[str], payload: dict[str, Any], *, indent: int = 2) -> Path:
    """Write ``payload`` as JSON to ``path`` (folders created; values JSON cannot hold written as ``str``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=indent, default=str))
    print(f"results written to {out}")
    return out
