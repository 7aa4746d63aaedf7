"""Deep copies and pickles of the in-process transformers backend, and of a FIRST reranker built on it.

Frameworks copy components freely (LangChain ``deepcopy``/``pickle``, LlamaIndex ``model_copy(deep=True)``,
Haystack ``deepcopy``): a copy shares the loaded weights, a pickle reloads from the model reference.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from rerank_plugins import load_reranker

pytest.importorskip("torch")

QUERY = "tell me about cats"
DOCS = ["cats purr", "dogs bark", "fish swim", "birds sing", "cats meow"]


def _ranked(reranker) -> list[tuple[str, float]]:  # type: ignore[no-untyped-def]
    return [(x.candidate.id, x.score) for x in reranker.rerank(QUERY, DOCS).results]


def test_backend_deepcopy_shares_the_weights_not_the_state(tiny_backend) -> None:  # type: ignore[no-untyped-def]
    clone = copy.deepcopy(tiny_backend)
    assert clone is not tiny_backend and clone.model is tiny_backend.model
    assert clone.tokenizer is tiny_backend.tokenizer
    assert clone.stats is not tiny_backend.stats and clone._lock is not tiny_backend._lock
    clone.batch_size = 1
    assert tiny_backend.batch_size == 8
    clone.close()  # closing the copy leaves the original working
    assert tiny_backend.model is not None
    assert copy.copy(tiny_backend).model is tiny_backend.model


def test_backend_pickle_reloads_from_its_reference(tiny_backend) -> None:  # type: ignore[no-untyped-def]
    blob = pickle.dumps(tiny_backend)
    assert len(blob) < 10_000  # the reference and options, not the weights
    again = pickle.loads(blob)
    assert again.ref == tiny_backend.ref and again.device == tiny_backend.device
    prompts = [tiny_backend.count_tokens("hello there")]
    assert [again.count_tokens("hello there")] == prompts


def test_first_reranker_deepcopy_and_pickle(tiny_llm_dir: Path) -> None:
    r = load_reranker(str(tiny_llm_dir), kind="first", window_size=4, backend_options={"device": "cpu"})
    expected = _ranked(r)
    clone = copy.deepcopy(r)
    assert clone.backend is not r.backend and clone.backend.model is r.backend.model
    assert _ranked(clone) == expected
    again = pickle.loads(pickle.dumps(r))
    assert again.backend is r.backend  # same process: the loader's shared copy, as a second load_reranker gets
    assert _ranked(again) == expected
    clone.close()
    assert _ranked(r) == expected


def test_first_reranker_unpickles_in_another_process(tiny_llm_dir: Path, tmp_path: Path) -> None:
    r = load_reranker(str(tiny_llm_dir), kind="first", window_size=4, backend_options={"device": "cpu"})
    (tmp_path / "r.pkl").write_bytes(pickle.dumps(r))
    code = (
        "import pickle, sys\n"
        f"r = pickle.loads(open({str(tmp_path / 'r.pkl')!r}, 'rb').read())\n"
        f"print([(x.candidate.id, x.score) for x in r.rerank({QUERY!r}, {DOCS!r}).results])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == str(_ranked(r))


def test_tokenizer_kwargs_reach_the_tokenizer(tiny_llm_dir: Path) -> None:
    from rerank_plugins.backends.transformers import TransformersLLMBackend

    backend = TransformersLLMBackend(tiny_llm_dir, device="cpu", tokenizer_kwargs={"model_max_length": 77})
    assert backend.tokenizer.model_max_length == 77
    assert pickle.loads(pickle.dumps(backend)).tokenizer.model_max_length == 77
