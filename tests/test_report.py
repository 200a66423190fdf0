from training.report import markdown


def test_markdown_has_a_row_per_model_with_exact_metric_values() -> None:
    report = {
        "dataset": {"name": "toy"},
        "n_users": 3,
        "seed": 0,
        "models": {
            "lstm": {"HR@10": 0.5, "NDCG@10": 0.25, "MRR": 0.2, "intervals": {"NDCG@10": [0.1, 0.4]}},
            "llm": {"HR@10": 0.0, "resolved_rate": 0.9, "hallucination_rate": 0.1},
        },
    }
    table = markdown(report)
    rows = [line for line in table.splitlines() if line.startswith("| lstm") or line.startswith("| llm")]
    assert len(rows) == 2
    assert "0.2500" in rows[0] and "[0.1000, 0.4000]" in rows[0]
    assert "0.900" in rows[1]
    assert "llm: resolved_rate 0.900, hallucination_rate 0.100" in table
