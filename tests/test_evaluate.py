"""The evaluation harness: leakage, error users, users sampling, JSON contents, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from movielens_samples import synthetic_release

from training import evaluate, registry
from training.__main__ import COMMANDS, main


class SpyModel:
    """Records everything the harness hands it; scores item i by n - i."""

    name = "spy"
    seen_fit: ClassVar[list] = []
    seen_score: ClassVar[list] = []

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def fit(self, split, catalog, seed) -> None:
        type(self).seen_fit.append((split, list(catalog.popularity)))
        self.n = split.n_items

    def score(self, histories):
        type(self).seen_score.extend([list(h) for h in histories])
        return np.tile(np.arange(self.n, dtype=float)[::-1], (len(histories), 1))


class FlakyModel:
    """Raises for every history that contains catalog index 0 (to test error users)."""

    name = "flaky"

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def fit(self, split, catalog, seed) -> None:
        self.n = split.n_items

    def score(self, histories):
        if any(0 in h for h in histories):
            raise RuntimeError("boom")
        return np.zeros((len(histories), self.n))


class ListModel:
    """A generative stage: returns the most popular items, repeats and history items included."""

    name = "lister"

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def fit(self, split, catalog, seed) -> None:
        self.order = list(np.argsort(-split.popularity(), kind="stable"))

    def rank(self, histories, k):
        return [[*self.order[:2], *self.order[: k - 2]] for _ in histories]

    def stats(self):
        return {"resolved_rate": 0.75, "hallucination_rate": 0.25}


class NeedsSpy(SpyModel):
    """A stage that uses another model of the run (like the LLM stages use the LSTM)."""

    name = "needs-spy"

    def fit(self, split, catalog, seed) -> None:
        import time

        self.inner = self.ctx.require("spy")
        assert self.ctx.require("spy") is self.inner  # fitted once, cached
        time.sleep(0.05)
        self.n = split.n_items


@pytest.fixture
def fake_models(monkeypatch):
    for name, cls in (("spy", SpyModel), ("flaky", FlakyModel), ("lister", ListModel), ("needs-spy", NeedsSpy)):
        monkeypatch.setitem(registry.MODELS, name, f"{__name__}:{cls.__name__}")
    SpyModel.seen_fit.clear()
    SpyModel.seen_score.clear()


def test_no_model_ever_sees_a_test_target(tmp_path: Path, fake_models) -> None:
    data = synthetic_release(tmp_path / "data")
    report = evaluate.run_evaluation(data, ["spy", "mostpop"], work_dir=tmp_path / "work")
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    split = leave_one_out(build_sequences(load_dataset(data)))
    ((fit_split, popularity),) = SpyModel.seen_fit
    assert fit_split.test_target == []  # withheld from every model
    assert popularity == split.popularity().tolist()  # training-only popularity
    for u, target in enumerate(split.test_target):
        assert target not in fit_split.train[u] and target != fit_split.valid_target[u]
        assert target not in fit_split.test_input(u)
    # score inputs: exactly each user's test input, never containing the target
    assert len(SpyModel.seen_score) == len(split.user_ids)
    for u, history in enumerate(SpyModel.seen_score):
        assert history == split.test_input(u) and split.test_target[u] not in history
    assert report["n_users"] == len(split.user_ids)


def test_report_json_and_hand_checked_ranks(tmp_path: Path, fake_models) -> None:
    data = synthetic_release(tmp_path / "data")
    out = tmp_path / "eval.json"
    report = evaluate.run_evaluation(data, ["spy", "lister"], json_path=out, work_dir=tmp_path / "w")
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(report))
    for key in ("dataset", "protocol", "n_users", "seed", "models"):
        assert key in saved
    entry = saved["models"]["spy"]
    for name in ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@10", "MRR", "genre_sim@10", "paper-HR@10"):
        assert name in entry and name in entry["intervals"]
        low, high = entry["intervals"][name]
        assert low <= entry[name] <= high
    for name in ("train_seconds", "eval_seconds", "seconds_per_user"):
        assert entry[name] >= 0
    # spy scores item i by n - i: the rank is 1 + (items with a lower index that the user has not seen)
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    split = leave_one_out(build_sequences(load_dataset(data)))
    expected = [1 + sum(1 for i in range(t) if i not in split.test_input(u)) for u, t in enumerate(split.test_target)]
    assert entry["HR@10"] == pytest.approx(np.mean([r <= 10 for r in expected]))
    assert entry["MRR"] == pytest.approx(np.mean([1 / r for r in expected]))
    # generative model: stats merged, list cleaning reported
    lister = saved["models"]["lister"]
    assert lister["method"] == "rank" and lister["resolved_rate"] == 0.75
    assert lister["duplicate_rate"] == pytest.approx(2 / 20)
    assert 0 <= lister["in_history_rate"] <= 1


def test_error_users_count_zero(tmp_path: Path, fake_models) -> None:
    data = synthetic_release(tmp_path / "data")
    report = evaluate.run_evaluation(data, ["flaky"], work_dir=tmp_path / "w")
    from dualrec_tui.core.movielens import load_dataset
    from dualrec_tui.core.sequences import build_sequences, leave_one_out

    split = leave_one_out(build_sequences(load_dataset(data)))
    failing = [u for u in range(len(split.user_ids)) if 0 in split.test_input(u)]
    assert failing, "the synthetic data should give the flaky model something to fail on"
    entry = report["models"]["flaky"]
    assert entry["errors"] == len(failing) and "boom" in entry["first_error"]
    # all-zero scores: ties by index, so a working user's rank is 1 + unseen items below the target
    ranks = [
        np.inf if u in failing else 1 + sum(1 for i in range(t) if i not in split.test_input(u))
        for u, t in enumerate(split.test_target)
    ]
    assert entry["MRR"] == pytest.approx(np.mean([0 if np.isinf(r) else 1 / r for r in ranks]))


def test_user_sample_is_fixed_and_shared(tmp_path: Path, fake_models) -> None:
    data = synthetic_release(tmp_path / "data")
    first = evaluate.select_users(40, 10, seed=3)
    assert first.tolist() == evaluate.select_users(40, 10, seed=3).tolist()
    assert len(set(first.tolist())) == 10
    assert evaluate.select_users(40, "all", 0).tolist() == list(range(40))
    report = evaluate.run_evaluation(data, ["spy", "mostpop"], users=7, seed=3, work_dir=tmp_path / "w")
    assert report["n_users"] == 7 and len(SpyModel.seen_score) == 7


def test_require_shares_models_and_times_them_apart(tmp_path: Path, fake_models, monkeypatch) -> None:
    import time

    slow_fit = SpyModel.fit

    def fit(self, split, catalog, seed):
        time.sleep(0.3)
        slow_fit(self, split, catalog, seed)

    monkeypatch.setattr(SpyModel, "fit", fit)
    data = synthetic_release(tmp_path / "data")
    report = evaluate.run_evaluation(data, ["needs-spy", "spy"], work_dir=tmp_path / "w")
    assert len(SpyModel.seen_fit) == 1
    assert report["models"]["spy"]["train_seconds"] >= 0.3
    assert report["models"]["needs-spy"]["train_seconds"] < 0.3


def test_unknown_and_missing_models_are_clear(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(registry.UnknownModelError, match="unknown model 'nope'"):
        registry.model_class("nope")
    monkeypatch.setitem(registry.MODELS, "ghost", "training.does_not_exist:Ghost")
    missing = r"registers model 'ghost'.*no module training\.does_not_exist"
    with pytest.raises(registry.UnknownModelError, match=missing):
        registry.model_class("ghost")
    monkeypatch.setitem(registry.MODELS, "phantom", "training.baselines:Phantom")
    with pytest.raises(registry.UnknownModelError, match=r"training\.baselines has no class Phantom"):
        registry.model_class("phantom")


def test_cli_user_error_is_one_red_line(tmp_path: Path, capsys) -> None:
    code = main(["evaluate", "--data", str(tmp_path / "missing"), "--models", "mostpop"])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "missing" in err and "Traceback" not in err


def test_cli_end_to_end_with_baselines(tmp_path: Path) -> None:
    data = synthetic_release(tmp_path / "data")
    out = tmp_path / "r.json"
    code = main(
        [
            "evaluate",
            "--data",
            str(data),
            "--models",
            "mostpop,markov",
            "--json",
            str(out),
            "--work-dir",
            str(tmp_path / "w"),
        ]
    )
    assert code == 0
    models = json.loads(out.read_text())["models"]
    assert set(models) == {"mostpop", "markov"}
    # the synthetic users walk through movies in order: the transition model must beat popularity
    assert models["markov"]["HR@1"] > models["mostpop"]["HR@1"]


def test_help_is_fast_and_imports_no_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from training.__main__ import build_parser\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        build_parser().parse_args(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'evaluate' in out.getvalue() and 'sasrec' in out.getvalue(), out.getvalue()\n"
        "names = ('torch', 'transformers', 'llama_cpp', 'sentence_transformers', 'peft')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_paired_differences_by_hand() -> None:
    ranks = np.array([1.0, 3.0, np.inf, 2.0])
    reference = np.array([2.0, 3.0, 1.0, np.inf])
    indices = evaluate.metrics.bootstrap_indices(4)
    paired = evaluate.paired_entry(ranks, reference, indices)
    ndcg = paired["NDCG@10"]
    by_hand = [1 - 1 / np.log2(3), 0.0, -1.0, 1 / np.log2(3)]
    assert ndcg["diff"] == pytest.approx(np.mean(by_hand))
    assert ndcg["users_better"] == 2 and ndcg["users_worse"] == 1
    assert ndcg["interval"][0] <= ndcg["diff"] <= ndcg["interval"][1]
    same = evaluate.paired_entry(ranks, ranks, indices)
    assert same["HR@10"] == {
        "diff": 0.0,
        "interval": [0.0, 0.0],
        "ratio": 1.0,
        "users_better": 0,
        "users_worse": 0,
        "detectable": 0.0,
    }
    # (1.96 + 0.84) * sd / sqrt(n) of the per-user differences, sd with n - 1
    assert ndcg["detectable"] == pytest.approx(2.8016 * np.std(by_hand, ddof=1) / 2.0, rel=1e-4)


def test_detectable_difference_shrinks_with_more_users_and_needs_two() -> None:
    """Four times the users halve the smallest difference they could show; one user shows nothing."""
    rng = np.random.default_rng(0)
    few = rng.choice([-1.0, 0.0, 0.0, 1.0], size=400)
    many = np.tile(few, 4)
    ratio = evaluate.metrics.detectable_difference(few) / evaluate.metrics.detectable_difference(many)
    assert ratio == pytest.approx(2.0, rel=0.01)
    assert evaluate.metrics.detectable_difference(np.array([0.5])) is None


def test_report_reads_detectable_from_saved_ranks_of_older_reports() -> None:
    """Reports written before 'detectable' was recorded still get it, from their per-user ranks."""
    from training.report import paired_markdown

    ranks, reference = [1, 3, None, 2], [2, 3, 1, None]
    paired = {"NDCG@10": {"diff": 0.1, "interval": [-0.2, 0.4], "ratio": 1.1}}
    report = {"models": {"a": {"ranks": ranks, "paired": {"b": paired}}, "b": {"ranks": reference}}}
    (row,) = evaluate.paired_rows(report)
    by_hand = evaluate.paired_entry(
        np.array([1.0, 3.0, np.inf, 2.0]), np.array([2.0, 3.0, 1.0, np.inf]), evaluate.metrics.bootstrap_indices(4)
    )
    assert row[-1] == pytest.approx(by_hand["NDCG@10"]["detectable"])
    assert paired_markdown(report)[-1].endswith(f"| {row[-1]:.4f} |")
    del report["models"]["b"]["ranks"]
    assert evaluate.paired_rows(report)[0][-1] is None


def test_paired_with_adds_intervals_that_separate_what_per_model_intervals_cannot(tmp_path: Path, capsys) -> None:
    from training.report import markdown

    data = synthetic_release(tmp_path / "data")
    out = tmp_path / "paired.json"
    code = main(
        ["evaluate", "--data", str(data), "--models", "mostpop,markov", "--paired-with", "mostpop", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    paired = report["models"]["markov"]["paired"]["mostpop"]
    assert set(paired) == {"NDCG@10", "HR@10"}
    diff = report["models"]["markov"]["NDCG@10"] - report["models"]["mostpop"]["NDCG@10"]
    assert paired["NDCG@10"]["diff"] == pytest.approx(diff)
    assert "paired" not in report["models"]["mostpop"]
    assert "paired differences" in capsys.readouterr().out
    assert "| markov | mostpop | NDCG@10 |" in markdown(report)
    with pytest.raises(evaluate.DualrecError, match="not in --models"):
        evaluate.run_evaluation(data, ["mostpop"], paired_with=["lstm"], work_dir=tmp_path / "w")


def test_lstm_plus_markov_tunes_its_weight_on_validation(tmp_path: Path, monkeypatch) -> None:
    """The free second signal: a weight from its grid (0 included) chosen on validation targets only."""
    from training.ensembles import MARKOV_WEIGHTS

    monkeypatch.setitem(registry.MODELS, "lstm", "training.baselines:MostPopModel")  # a cheap stand-in
    data = synthetic_release(tmp_path / "data")
    report = evaluate.run_evaluation(data, ["lstm", "markov", "lstm+markov"], work_dir=tmp_path / "w")
    entry = report["models"]["lstm+markov"]
    assert entry["markov_weight"] in MARKOV_WEIGHTS and set(entry["valid_NDCG@10_by_weight"]) == {
        str(w) for w in MARKOV_WEIGHTS
    }
    # popularity alone cannot follow the synthetic users' walk; the Markov signal can, so it gets a weight
    assert entry["markov_weight"] > 0 and entry["NDCG@10"] > report["models"]["lstm"]["NDCG@10"]


class ExportedLlmStandIn:
    """Stands in for the `llm-rank` row: records the checkpoint it is handed, ranks like popularity."""

    name = "llm-rank"
    loaded: ClassVar[list] = []

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def load(self, path) -> None:
        type(self).loaded.append(Path(path))
        self.n = self.ctx.split.n_items

    def score(self, histories):
        return np.tile(np.arange(self.n, dtype=float)[::-1], (len(histories), 1))


def test_export_reports_through_the_evaluation_harness(tmp_path: Path, monkeypatch) -> None:
    """`export --evaluate-users N` is the harness's row for the adapter's task beside the LSTM, not a loop of
    its own: the exported file is the row's checkpoint, and the harness's JSON lands beside it."""
    from training.export import adapter_task, evaluate_export

    monkeypatch.setitem(registry.MODELS, "lstm", "training.baselines:MostPopModel")  # a cheap stand-in
    monkeypatch.setitem(registry.MODELS, "llm-rank", f"{__name__}:{ExportedLlmStandIn.__name__}")
    data = synthetic_release(tmp_path / "data")
    model = tmp_path / "export" / "model-F32.gguf"
    model.parent.mkdir()
    summary = evaluate_export(model, "candidates", data, 5)
    assert ExportedLlmStandIn.loaded == [model]
    report = json.loads((tmp_path / "export" / "evaluation.json").read_text())
    assert set(report["models"]) == {"lstm", "llm-rank"} and report["n_users"] == summary["users"] == 5
    assert summary["row"] == "llm-rank" and summary["NDCG@10"] == report["models"]["llm-rank"]["NDCG@10"]
    paired = report["models"]["llm-rank"]["paired"]["lstm"]["NDCG@10"]  # the LSTM is the paired reference
    assert summary["paired"]["lstm"]["NDCG@10"] == paired

    train = tmp_path / "train"
    (train / "checkpoint-20").mkdir(parents=True)
    assert adapter_task(train / "checkpoint-20") == "titles"  # no manifest: `training llm`'s default
    (train / "manifest.json").write_text(json.dumps({"data": {"task": "candidates"}}))
    assert adapter_task(train / "checkpoint-20") == "candidates"
    (train / "manifest.json").write_text(json.dumps({"data": {"task": "titles"}}))
    assert adapter_task(train / "checkpoint-20") == "titles"
    (train / "manifest.json").write_text(json.dumps({"data": {}}))  # written before the candidates task
    assert adapter_task(train / "checkpoint-20") == "titles"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_its_own_help(command: str, capsys) -> None:
    """Each command in the table resolves to a CLI entry point whose --help names the command and its flags."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m training {command} ") and "--" in out


def test_paired_across_two_runs_equals_paired_within_one(tmp_path: Path, capsys) -> None:
    """Two adapters cannot share one evaluate run; --save-ranks + report --paired-across pair them anyway."""
    from training.report import main as report_main

    data = synthetic_release(tmp_path / "data")
    both, first, second = tmp_path / "both.json", tmp_path / "a.json", tmp_path / "b.json"
    common = ["evaluate", "--data", str(data), "--users", "9", "--seed", "2", "--save-ranks"]
    assert main([*common, "--models", "mostpop,markov", "--paired-with", "mostpop", "--json", str(both)]) == 0
    assert main([*common, "--models", "markov", "--json", str(first)]) == 0
    assert main([*common, "--models", "mostpop", "--json", str(second)]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert len(a["evaluated_users"]) == 9 and a["evaluated_users"] == b["evaluated_users"]
    ranks = a["models"]["markov"]["ranks"]
    assert len(ranks) == 9 and all(r is None or (isinstance(r, int) and r >= 1) for r in ranks)
    across = evaluate.paired_across(a, "markov", b, "mostpop")
    assert across == json.loads(both.read_text())["models"]["markov"]["paired"]["mostpop"]
    capsys.readouterr()
    assert report_main(["--paired-across", f"{first}:markov", f"{second}:mostpop"]) == 0
    printed = capsys.readouterr().out
    assert f"| NDCG@10 | {across['NDCG@10']['ratio']:.3f}x | {across['NDCG@10']['diff']:+.4f} |" in printed
    # other users, or a report without ranks, cannot be paired
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(data),
                "--users",
                "8",
                "--save-ranks",
                "--models",
                "mostpop",
                "--json",
                str(second),
            ]
        )
        == 0
    )
    with pytest.raises(evaluate.DualrecError, match="same users"):
        evaluate.paired_across(a, "markov", json.loads(second.read_text()), "mostpop")
    without_users = json.loads(both.read_text())
    del without_users["evaluated_users"]
    with pytest.raises(evaluate.DualrecError, match="--save-ranks"):
        evaluate.paired_across(without_users, "markov", a, "markov")
    both_report = json.loads(both.read_text())
    del both_report["models"]["markov"]["ranks"]
    with pytest.raises(evaluate.DualrecError, match="--save-ranks"):
        evaluate.paired_across(both_report, "markov", a, "markov")
