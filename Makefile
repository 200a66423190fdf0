# dualrec: `make run` installs everything into .venv and starts the app; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LLAMA_VERSION ?= 0.3.36

UNAME_S := $(shell uname -s)
ifeq ($(UNAME_S),Darwin)
  TORCH_SPEC ?= torch>=2.2,<2.14
else
  # The CPU build; a plain `torch` would pull a multi-GB CUDA build. Override for a GPU machine:
  # make install TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
  TORCH_SPEC ?= torch==2.13.0
endif

.PHONY: install run test lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_llama_cpp.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	scripts/install_llama_cpp.sh $(BIN)/python $(LLAMA_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	# llama.cpp's GGUF converter scripts ship only in llama-cpp-python's source package: fetch them once.
	$(BIN)/python -c "from training.export import find_converter; print('GGUF converter:', find_converter())"
	touch $@

run: install
	$(BIN)/dualrec-tui

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
