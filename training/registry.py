"""Model name -> "module:Class", imported only when the model is asked for.

To add a model to `python -m training evaluate`, add one line here and write a class that follows
the Recommender protocol documented in training/evaluate.py.
"""

from __future__ import annotations

import importlib

from dualrec_tui.core.errors import DualrecError

MODELS: dict[str, str] = {
    "mostpop": "training.baselines:MostPopModel",
    "markov": "training.baselines:MarkovModel",
    "sasrec": "training.sasrec:SasrecModel",
    "lstm": "training.fit_lstm:LstmModel",
    "lstm+markov": "training.ensembles:LstmMarkovModel",
    # The candidate-grounded pipeline (the product): the LLM's own order of the LSTM's top K, and the fusion.
    "llm-rank": "training.candidate_eval:LlmRankModel",
    "llm-rank-pmi": "training.candidate_eval:LlmPmiRankModel",
    "llm-rank-prefix": "training.candidate_eval:LlmPrefixRankModel",
    "dualrec": "training.candidate_eval:CandidateDualRecModel",
    "lstm+llm": "training.candidate_eval:LstmLlmModel",
    "lstm+sim": "training.candidate_eval:LstmSimModel",
    "dualrec-prefix": "training.candidate_eval:PrefixDualRecModel",
    "lstm+llm+sim": "training.candidate_eval:LstmLlmSimModel",
    "lstm+markov+sim": "training.candidate_eval:LstmMarkovSimModel",
    "dualrec+markov": "training.candidate_eval:DualRecMarkovModel",  # `dualrec` as first measured (session 12)
    # DUALRec as first built (the LLM writes titles from the whole catalog), kept so before/after stay measurable.
    "llm-base": "training.llm_eval:LlmBaseModel",
    "llm": "training.llm_eval:LlmModel",
    "dualrec-titles": "training.llm_eval:DualRecModel",
    # The same LLM rows with titles constrained to the catalog by a grammar (to measure whether it helps).
    "llm-base-catalog": "training.llm_eval:LlmBaseCatalogModel",
    "llm-catalog": "training.llm_eval:LlmCatalogModel",
}


class UnknownModelError(DualrecError):
    """A model name that is not registered, or a registry entry that names no importable class."""


def model_class(name: str) -> type:
    """The class registered for `name`, imported now; a clear error if it is not registered or not there."""
    target = MODELS.get(name)
    if target is None:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    module_name, _, class_name = target.partition(":")
    where = f"training/registry.py registers model {name!r} as {target}, but"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UnknownModelError(f"{where} there is no module {module_name}") from None
        raise  # a dependency of the module is missing: its own message names it
    cls = getattr(module, class_name, None)
    if cls is None:
        raise UnknownModelError(f"{where} {module_name} has no class {class_name}")
    return cls
