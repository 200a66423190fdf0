"""`python -m training report EVAL.json ...`: an `evaluate` JSON as a Markdown table (for docs/results.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@10", "NDCG@20", "MRR", "genre_sim@10", "paper-HR@10")
EXTRAS = ("resolved_rate", "hallucination_rate", "duplicate_rate", "in_history_rate")


def markdown(report: dict) -> str:
    """One table: a row per model, the metrics of evaluation.md, NDCG@10's interval, timings."""
    dataset = report.get("dataset", {})
    name = dataset.get("name", "?") if isinstance(dataset, dict) else dataset
    lines = [
        f"**{name}**, {report.get('n_users')} users, seed {report.get('seed')}",
        "",
        "| model | " + " | ".join(COLUMNS) + " | NDCG@10 95% CI | resolved | train s | s/user |",
        "|---" * (len(COLUMNS) + 5) + "|",
    ]
    for model, metrics in report.get("models", {}).items():
        interval = metrics.get("intervals", {}).get("NDCG@10")
        ci = f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
        resolved = metrics.get("resolved_rate")
        cells = [f"{metrics[c]:.4f}" if isinstance(metrics.get(c), (int, float)) else "" for c in COLUMNS]
        lines.append(
            f"| {model} | "
            + " | ".join(cells)
            + f" | {ci} | {'' if resolved is None else f'{resolved:.3f}'}"
            + f" | {metrics.get('train_seconds', 0):.0f} | {metrics.get('seconds_per_user', 0):.4f} |"
        )
    extras = [
        f"- {model}: " + ", ".join(f"{key} {metrics[key]:.3f}" for key in EXTRAS if key in metrics)
        for model, metrics in report.get("models", {}).items()
        if any(key in metrics for key in EXTRAS)
    ]
    paired = paired_markdown(report)
    return "\n".join(lines + (["", *extras] if extras else []) + (["", *paired] if paired else [])) + "\n"


def paired_markdown(report: dict) -> list[str]:
    """Paired differences against each reference model (from `evaluate --paired-with`), one row each."""
    from .evaluate import detectable_text, paired_rows

    rows = [
        f"| {model} | {ref} | {metric} | {'' if ratio is None else f'{ratio:.3f}x'} "
        f"| {diff:+.4f} | [{low:+.4f}, {high:+.4f}] | {verdict} | {detectable_text(found)} |"
        for model, ref, metric, ratio, diff, low, high, verdict, found in paired_rows(report)
    ]
    if not rows:
        return []
    return [
        "Paired differences (model - reference, same users, paired bootstrap 95% interval; detectable = the "
        "true difference these users would show with 80% probability, at the spread observed; '-' = the two "
        "ranked every user alike):",
        "",
        "| model | vs | metric | ratio | diff | 95% interval | supported? | detectable |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training report",
        description="Print each `python -m training evaluate --json` report as a Markdown table.",
    )
    parser.add_argument("reports", nargs="*", type=Path, help="JSON files written by `evaluate --json`")
    parser.add_argument(
        "--paired-across",
        nargs=2,
        metavar=("A.json:MODEL", "B.json:REFERENCE"),
        help="the paired difference of MODEL in run A against REFERENCE in run B (both run with --save-ranks "
        "on the same users), e.g. two LLM adapters that cannot share one evaluate run",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m training report FILE...`: each report as Markdown on stdout."""
    from dualrec_tui.core.errors import DataFormatError

    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFormatError(path, None, f"not an evaluate report ({exc})") from exc

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.reports and not args.paired_across:
        parser.error("give evaluate reports, --paired-across, or both")
    for path in args.reports:
        print(markdown(read(path)))
    if args.paired_across:
        from .evaluate import detectable_text, paired_across

        (a_path, model), (b_path, reference) = (_report_and_model(spec) for spec in args.paired_across)
        paired = paired_across(read(a_path), model, read(b_path), reference)
        print(f"Paired differences ({a_path}: {model} - {b_path}: {reference}, same users, paired bootstrap 95%):")
        print()
        print("| metric | ratio | diff | 95% interval | users better / worse | detectable |")
        print("|---|---|---|---|---|---|")
        for metric, row in paired.items():
            low, high = row["interval"]
            ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}x"
            print(
                f"| {metric} | {ratio} | {row['diff']:+.4f} | [{low:+.4f}, {high:+.4f}] "
                f"| {row['users_better']} / {row['users_worse']} | {detectable_text(row['detectable'])} |"
            )
    return 0


def _report_and_model(spec: str) -> tuple[Path, str]:
    """ "runs/a.json:dualrec" -> (Path("runs/a.json"), "dualrec")."""
    from dualrec_tui.core.errors import DualrecError

    path, sep, model = spec.rpartition(":")
    if not sep or not path or not model:
        raise DualrecError(f"--paired-across takes REPORT.json:MODEL, not {spec!r}")
    return Path(path), model
