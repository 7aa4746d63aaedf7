"""Helpers only this repository's own tests and benchmarks use (not shipped with the library).

Local servers (:mod:`~_support.live_server`, :mod:`~_support.http_stub`, :mod:`~_support.llama_server`), the
PyLate reference run in its own interpreter (:mod:`~_support.pylate_reference`) and the tiny random models of the
recipe architectures (:mod:`~_support.recipe_models`). ``tests/`` is put on the path by pytest (``pythonpath`` in
``pyproject.toml``) and by ``benchmarks/_common.py``, so they import as ``_support.<module>``. What users of the
library need for their own tests (the conformance suites, the tiny models, the scripted LLM) stays in
:mod:`rerank_plugins.testing`.
"""
