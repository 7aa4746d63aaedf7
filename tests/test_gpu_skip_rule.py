"""The rule of tests/conftest.py that skips the ``gpu`` tier without CUDA looks at the marker, not at keywords: a
test in a folder named ``gpu`` (tests/gpu/, or a checkout at .../gpu/) is not skipped unless it is marked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


def test_only_marked_tests_are_skipped_without_cuda(tmp_path: Path) -> None:
    folder = tmp_path / "gpu"
    folder.mkdir()
    shutil.copy(CONFTEST, folder / "conftest.py")
    (folder / "test_rule.py").write_text(
        "import pytest\n\n"
        "def test_plain():\n    pass\n\n"
        "@pytest.mark.gpu\ndef test_marked():\n    pass\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs CUDA\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:asyncio", str(folder)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    import torch

    expected = "2 passed" if torch.cuda.is_available() else "1 passed, 1 skipped"
    assert expected in proc.stdout, proc.stdout + proc.stderr
