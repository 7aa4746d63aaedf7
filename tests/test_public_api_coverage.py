"""Nothing registered is left out: every strategy kind is exported from ``rerank_plugins`` and run by a conformance
test class, and every model recipe's architecture is loaded by a proof test.

Read from the sources (``ast``): a conformance class covers the strategy classes its ``reranker`` fixture names,
or loads by kind (``load_reranker("remote", ...)``), in its body or in the fixtures it takes (from its module or a
``conftest.py`` above it).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import rerank_plugins
from rerank_plugins.models import strategies
from rerank_plugins.recipes import recipes

TESTS = Path(__file__).parent
ROOT = TESTS.parent
PACKAGE = Path(rerank_plugins.__file__).parent


def _names(node: ast.AST) -> set[str]:
    """Class names used under ``node``, and ``kind:<name>`` for each ``load_reranker("<name>", ...)``."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif (isinstance(n, ast.Call) and ast.unparse(n.func).endswith("load_reranker") and n.args
              and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)):
            out.add(f"kind:{n.args[0].value}")
    return out


@cache
def _module_fixtures(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _fixture_scopes(path: Path) -> list[dict[str, ast.FunctionDef]]:
    """The fixtures a test module sees: its own, then each ``conftest.py`` from its folder up to the repository."""
    scopes = [_module_fixtures(path)]
    for folder in path.parents:
        if not folder.is_relative_to(ROOT):
            break
        if (folder / "conftest.py").is_file():
            scopes.append(_module_fixtures(folder / "conftest.py"))
    return scopes


def _fixture_names(func: ast.FunctionDef, scopes: list[dict[str, ast.FunctionDef]], seen: set[str]) -> set[str]:
    """Names a fixture function uses, following the fixtures it takes as arguments."""
    out = _names(func)
    for arg in func.args.args:
        if arg.arg in seen:
            continue
        seen.add(arg.arg)
        for scope in scopes:
            if arg.arg in scope:
                out |= _fixture_names(scope[arg.arg], scopes, seen)
                break
    return out


@cache
def conformance_classes() -> dict[str, frozenset[str]]:
    """``path::Class`` of every ``RerankerConformance`` subclass under tests/ and integrations/ -> names it uses."""
    out: dict[str, frozenset[str]] = {}
    for path in sorted([*TESTS.rglob("test_*.py"), *(ROOT / "integrations").rglob("test_*.py")]):
        tree = ast.parse(path.read_text())
        for cls in tree.body:
            if not isinstance(cls, ast.ClassDef) or "RerankerConformance" not in {ast.unparse(b) for b in cls.bases}:
                continue
            names = _names(cls)
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name == "reranker":
                    names |= _fixture_names(item, _fixture_scopes(path), {"self", "request"})
            out[f"{path.relative_to(ROOT)}::{cls.name}"] = frozenset(names)
    return out


def test_the_scan_finds_the_conformance_classes() -> None:
    found = conformance_classes()
    assert len(found) > 30
    # a fixture taken from a conftest: the ColBERT class names only its `colbert` fixture
    assert "ColBERTReranker" in found["tests/rankers/test_late_interaction.py::TestColBERTConformance"]


@pytest.mark.parametrize("kind", sorted(strategies()))
def test_every_strategy_is_exported_and_has_a_conformance_class(kind: str) -> None:
    spec = strategies()[kind]
    module, _, name = spec.target.partition(":")
    assert rerank_plugins._LAZY.get(name) == module, f"add {name!r}: {module!r} to _LAZY in rerank_plugins/__init__.py"
    assert name in rerank_plugins.__all__
    assert getattr(rerank_plugins, name) is spec.load_class()
    covering = [test for test, names in conformance_classes().items() if {name, f"kind:{kind}"} & names]
    assert covering, f"no RerankerConformance test class builds {name} (strategy {kind!r})"


#: recipe -> (the architecture class its proof test loads, the proof test). The proof runs the reference
#: implementation and ours on a tiny random model of that class (docs/architecture.md, "model family").
#: Mistral-based listwise checkpoints are proven on the tiny Llama of tests/recipes/conftest.py: their proofs are
#: prompt token ids (Llama/Mistral tokenizers alike add ``<s>``), which the decoder class does not change.
_CE, _T5, _COLBERT = (f"tests/rankers/test_{m}.py" for m in ("cross_encoder", "seq2seq", "late_interaction"))
_POINTWISE, _LISTWISE = (f"tests/recipes/test_{m}_recipes.py" for m in ("pointwise", "listwise"))
_XLMR_MODERNBERT_DEBERTA = f"{_CE}::test_parity_xlmr_modernbert_deberta"
RECIPE_PROOFS: dict[str, tuple[str, str]] = {
    "ms-marco-cross-encoder": (
        "BertForSequenceClassification", f"{_CE}::test_parity_with_sentence_transformers_one_logit"
    ),
    "bge-reranker": ("XLMRobertaForSequenceClassification", _XLMR_MODERNBERT_DEBERTA),
    "mxbai-rerank-v1": ("DebertaV2ForSequenceClassification", _XLMR_MODERNBERT_DEBERTA),
    "gte-reranker-modernbert": ("ModernBertForSequenceClassification", _XLMR_MODERNBERT_DEBERTA),
    "monot5": ("T5ForConditionalGeneration", f"{_T5}::test_monot5_parity_with_rerankers_t5ranker"),
    "duot5": ("T5ForConditionalGeneration", f"{_T5}::test_duot5_parity_with_pygaggle_aggregation"),
    "colbertv2": ("BertModel", f"{_COLBERT}::test_parity_with_pylate"),
    "answerai-colbert-small": ("BertModel", f"{_COLBERT}::test_parity_with_pylate"),
    "gte-moderncolbert": ("ModernBertModel", f"{_COLBERT}::test_parity_with_pylate"),
    "qwen3-reranker": ("Qwen3ForCausalLM", f"{_POINTWISE}::test_qwen3_reranker_equals_the_model_card"),
    "bge-reranker-v2-gemma": ("GemmaForCausalLM", f"{_POINTWISE}::test_bge_reranker_v2_gemma_equals_flagembedding"),
    "mxbai-rerank-base-v2": ("Qwen2ForCausalLM", f"{_POINTWISE}::test_mxbai_rerank_v2_equals_the_package"),
    "mxbai-rerank-large-v2": ("Qwen2ForCausalLM", f"{_POINTWISE}::test_mxbai_rerank_v2_equals_the_package"),
    "rank-zephyr": ("LlamaForCausalLM", f"{_LISTWISE}::test_rank_zephyr_and_vicuna_send_rank_llms_prompt"),
    "rank-vicuna": ("LlamaForCausalLM", f"{_LISTWISE}::test_rank_zephyr_and_vicuna_send_rank_llms_prompt"),
    "first-mistral": (
        "LlamaForCausalLM", f"{_LISTWISE}::test_first_mistral_sends_rank_llms_prompt_then_the_forced_bracket"
    ),
    "first-zephyr": ("LlamaForCausalLM", f"{_LISTWISE}::test_first_zephyr_sends_firsts_own_prompt"),
    "rank-r1": ("Qwen2ForCausalLM", f"{_LISTWISE}::test_rank_r1_group_prompt_equals_the_reference"),
    "reasonrank": ("Qwen2ForCausalLM", f"{_LISTWISE}::test_reasonrank_prompt_equals_the_reference"),
}
#: recipes whose checkpoints need the hub repository's own modelling code (``trust_remote_code``): no offline proof;
#: each says so in its ``notes``
NO_OFFLINE_PROOF = {"jina-reranker-v1", "jina-reranker-v2", "jina-colbert-v2"}


def _kit_sources() -> str:
    """Where tiny random models are built: the shipped test kit, tests/_support and every conftest.py."""
    files = [*(PACKAGE / "testing").glob("*.py"), *(TESTS / "_support").glob("*.py"), *TESTS.rglob("conftest.py")]
    return "\n".join(p.read_text() for p in files)


def test_every_recipe_has_a_proof_or_says_why_not() -> None:
    listed = set(recipes())
    assert set(RECIPE_PROOFS) | NO_OFFLINE_PROOF == listed, (
        "a recipe needs a line in RECIPE_PROOFS (its architecture and the proof test that loads it)"
    )
    assert not set(RECIPE_PROOFS) & NO_OFFLINE_PROOF
    for name in NO_OFFLINE_PROOF:
        recipe = recipes()[name]
        assert "not testable offline" in recipe.notes or "trust_remote_code" in recipe.notes, name


@pytest.mark.parametrize("name", sorted(RECIPE_PROOFS))
def test_every_recipe_architecture_is_loaded_by_its_proof_test(name: str) -> None:
    architecture, proof = RECIPE_PROOFS[name]
    path, _, func = proof.partition("::")
    tests = _module_fixtures(ROOT / path)
    assert func in tests, f"{proof} does not exist"
    assert architecture in _kit_sources(), f"no tiny-model builder makes a {architecture}"



def test_the_strategy_spec_keeps_no_unread_field() -> None:
    """``StrategySpec.extra`` (the pip extra) was stored and never read: the classes name their extra themselves
    when a dependency is missing (``_optional.require``), so the registry no longer takes one."""
    import dataclasses
    import inspect

    from rerank_plugins.models import StrategySpec, register_strategy

    assert [f.name for f in dataclasses.fields(StrategySpec)] == ["name", "target", "description", "needs_model"]
    assert "extra" not in inspect.signature(register_strategy).parameters
