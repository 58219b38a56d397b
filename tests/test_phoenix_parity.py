"""run_experiment with a Phoenix client: recorded in Phoenix, same results as Phoenix's own."""

from __future__ import annotations

from typing import Any

from phoenix_fixture import PhoenixServer, create_dataset, recorded_runs, unique

from evalwire import run_experiment

ROWS = [{"id": f"q{i}", "input": {"n": i}, "expected": {"n": 2 * i}} for i in range(12)]


def double(input: dict[str, int]) -> int:
    return input["n"] * 2 if input["n"] != 5 else -1  # one wrong answer


def exact(output: int, expected: dict[str, int]) -> float:
    return float(output == expected["n"])


def test_our_function_records_in_phoenix_and_agrees_with_phoenixs(
    phoenix_server: PhoenixServer, phoenix_api: Any
) -> None:
    from phoenix.client import Client

    name = unique("parity")
    create_dataset(phoenix_api, name, ROWS)
    client = Client(base_url=phoenix_server.url)
    dataset = client.datasets.get_dataset(dataset=name)

    ours = run_experiment(
        dataset=dataset,
        task=double,
        evaluators=[exact],
        client=client,
        experiment_name=f"{name}-evalwire",
        print_summary=False,
        plugin_args=["no:console", "no:store"],
    )
    theirs = client.experiments.run_experiment(
        dataset=dataset,
        task=double,
        evaluators=[exact],
        print_summary=False,
        experiment_name=f"{name}-phoenix",
    )

    assert ours.dataset_id == dataset.id and ours.dataset_version_id == dataset.version_id
    (experiment,) = [
        e
        for e in phoenix_api.get(f"/v1/datasets/{dataset.id}/experiments").json()["data"]
        if e["id"] == ours.experiment_id
    ]
    # The experiment's project (its task spans) and metadata, as Phoenix holds them.
    assert ours.project_name == experiment["project_name"] and theirs["project_name"]
    assert ours.experiment_metadata == experiment["metadata"]
    assert ours.experiment_metadata["run_by"] == "evalwire"
    our_outputs = {r.example_id: r.output for r in ours.task_runs}
    their_outputs = {r["dataset_example_id"]: r["output"] for r in theirs["task_runs"]}
    assert our_outputs == their_outputs
    our_scores = sorted(e.score for e in ours.evaluation_runs)
    their_scores = sorted(e.result["score"] for e in theirs["evaluation_runs"])
    assert our_scores == their_scores and our_scores.count(0.0) == 1

    recorded = recorded_runs(phoenix_api, ours.experiment_id)
    assert len(recorded) == len(ROWS)
    assert sorted(r["output"] for r in recorded) == sorted(our_outputs.values())
    assert all(r["annotations"] and r["annotations"][0]["name"] == "exact" for r in recorded)
