"""Start llama-cpp-python's OpenAI-compatible server in a subprocess, for tests and benchmarks.

:class:`LlamaServer` runs ``python tests/_support/llama_server.py --model M --host 127.0.0.1 --port P
...``, which is ``python -m llama_cpp.server`` with one optional change: ``--no_repack`` turns off llama.cpp's
"extra buffer types" (``use_extra_bufts``, the runtime weight repacking into AMX/AVX-512 layouts). On some
virtualised Xeon CPUs that report AMX, the repacked Q4 kernels crash the process with a segmentation fault on
the first forward pass (seen with llama-cpp-python 0.3.36); without repacking the plain CPU kernels are used
and the numbers are the same up to float summation order. The server binds to loopback only.

    with LlamaServer(gguf_path) as server:
        backend = OpenAIBackend(base_url=server.base_url, ...)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

try:
    from ._context import StartStop
except ImportError:  # run as the server script (``command()``): its folder is on sys.path, not the package
    from _context import StartStop  # type: ignore[no-redef]

__all__ = ["LlamaServer", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LlamaServer(StartStop):
    """A llama-cpp-python server process on 127.0.0.1, started by :meth:`start` and stopped by :meth:`stop`."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        port: int | None = None,
        n_ctx: int = 2048,
        n_threads: int = 1,
        no_repack: bool = True,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model = str(model)
        if not Path(self.model).is_file():
            raise FileNotFoundError(f"GGUF model file not found: {self.model}")
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port(self.host)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.no_repack = no_repack
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path is not None else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: object | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [
            sys.executable, str(Path(__file__).resolve()),
            "--model", self.model, "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads), "--verbose", "False",
            *self.extra_args,
        ]
        if self.no_repack:
            cmd.insert(2, "--no_repack")
        return cmd

    def start(self) -> LlamaServer:
        """Start the process and wait (at most ``startup_timeout`` s) until ``GET /v1/models`` answers."""
        if self.process is not None:
            return self
        log = open(self.log_path, "wb") if self.log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        self._log = log
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.host}:{self.port}/v1/models"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(f"llama.cpp server exited with code {code} during start-up ({self.log_hint()})")
            try:
                with urllib.request.urlopen(url, timeout=2.0) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama.cpp server not ready after {self.startup_timeout:.0f}s ({self.log_hint()})")

    def log_hint(self) -> str:
        return f"log: {self.log_path}" if self.log_path is not None else "pass log_path= to keep its log"

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the process, then kill it if it has not exited within ``grace`` seconds."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
        log, self._log = self._log, None
        if log is not None and log is not subprocess.DEVNULL and hasattr(log, "close"):
            log.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None



def _disable_repack() -> None:
    import llama_cpp.llama_cpp as lib  # the ctypes layer that llama_cpp.Llama calls

    original = lib.llama_model_default_params

    def params():  # type: ignore[no-untyped-def]
        p = original()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m llama_cpp.server`` with an extra leading ``--no_repack`` flag (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--no_repack" in args:
        args.remove("--no_repack")
        _disable_repack()
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = ["llama_cpp.server", *args]
    server_main()


if __name__ == "__main__":
    main()
