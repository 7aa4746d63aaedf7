"""The shipped test kit imports without pytest (issue 24): only the two pytest suites need it."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import rerank_plugins.testing

ROOT = Path(__file__).resolve().parents[2]
NEEDS_PYTEST = {"conformance", "adapter_kinds"}  # the suites themselves; documented in rerank_plugins/testing

CHILD = textwrap.dedent("""
    import importlib, json, sys
    sys.modules["pytest"] = None  # as if pytest were not installed: `import pytest` raises ImportError
    failed = {}
    for name in json.loads(sys.argv[1]):
        try:
            importlib.import_module(name)
        except Exception as exc:  # report every module, not only the first
            failed[name] = f"{type(exc).__name__}: {exc}"
    from rerank_plugins.testing.fake_llm import ScriptedLLM
    from rerank_plugins.testing import ScriptedLLM as again
    assert again is ScriptedLLM
    print(json.dumps(failed))
""")


def _run_without_pytest(modules: list[str]) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(modules)], capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_scripted_llm_and_every_helper_but_the_suites_import_without_pytest():
    shipped = sorted(m.name for m in pkgutil.iter_modules(rerank_plugins.testing.__path__))
    assert "fake_llm" in shipped and set(shipped) >= NEEDS_PYTEST
    modules = ["rerank_plugins.testing"] + [f"rerank_plugins.testing.{m}" for m in shipped if m not in NEEDS_PYTEST]
    assert _run_without_pytest(modules) == {}


def test_the_suites_say_they_need_pytest_when_it_is_missing():
    failed = _run_without_pytest([f"rerank_plugins.testing.{m}" for m in sorted(NEEDS_PYTEST)])
    assert set(failed) == {f"rerank_plugins.testing.{m}" for m in NEEDS_PYTEST}
    assert all("pytest" in message for message in failed.values()), failed
