"""report.md: the main table in the paper's layout, and the tables behind Figures 1, 3, 4 and 5."""

from __future__ import annotations

import json
import os

import pytest

from l2d.report import build
from l2d.report.rows import short_paths
from l2d.tasks.summary import wilson_interval
from tests.report.conftest import write_run
from tests.report.tables import section_table, section_titles

PAPER_SCORES = {  # method -> task -> score
    "base": {"gsm8k": 0.10, "math": 0.05, "humaneval": 0.20, "mbpp": 0.30, "mmlu": 0.40},
    "lora": {"gsm8k": 0.20, "math": 0.06, "humaneval": 0.18, "mbpp": 0.28, "mmlu": 0.39},
    "l2d_lora": {"gsm8k": 0.30, "math": 0.10, "humaneval": 0.25, "mbpp": 0.32, "mmlu": 0.42},
}


def render(tmp_path, *inputs) -> str:
    out = tmp_path / "report"
    build(list(inputs), out)
    return (out / "report.md").read_text()


@pytest.fixture
def paper_layout(tmp_path, write_result) -> str:
    for method, scores in PAPER_SCORES.items():
        for task, score in scores.items():
            write_result(f"{method}-{task}", task, method, score)
    return render(tmp_path, tmp_path / "evals")


def test_main_table_columns_follow_the_paper(paper_layout):
    rows = section_table(paper_layout, "Results")
    assert list(rows[0]) == ["Model", "Protocol", "GSM8K", "MATH", "Math avg", "HumanEval", "MBPP", "Coding avg",
                             "MMLU", "Avg", "Params"]
    assert [row["Model"] for row in rows] == ["smollm2-135m", "LoRA", "L2D-LoRA"]


def test_scores_are_percentages_with_the_ci_half_width(paper_layout):
    base = section_table(paper_layout, "Results")[0]
    low, high = wilson_interval(20, 200)
    assert base["GSM8K"] == f"10.00 ±{50 * (high - low):.1f}"
    assert base["MMLU"].startswith("40.00 ±")


def test_overall_average_is_the_mean_of_category_averages(paper_layout):
    base = section_table(paper_layout, "Results")[0]
    assert base["Math avg"] == "7.50"
    assert base["Coding avg"] == "25.00"
    # (7.5 + 25 + 40) / 3 = 24.17; the plain mean over the five tasks would be 21.00
    assert base["Avg"] == "24.17"
    l2d = section_table(paper_layout, "Results")[2]
    assert l2d["Avg"] == f"{(20.0 + 28.5 + 42.0) / 3:.2f}"


def test_trainable_parameters_are_formatted_like_the_paper(paper_layout):
    assert [row["Params"] for row in section_table(paper_layout, "Results")] == ["-", "3.4M", "73M"]


def test_only_sections_with_data_are_written(paper_layout):
    assert section_titles(paper_layout) == ["Results", "Inputs"]


def test_inputs_list_files_and_commands(paper_layout):
    inputs = section_table(paper_layout, "Inputs")
    assert len(inputs) == 15
    row = next(r for r in inputs if r["Results file"].endswith("lora-gsm8k/results.json"))
    assert row["Command"] == "`python -m l2d.evaluate task=gsm8k checkpoint=None \\| tee log`"


def test_unknown_category_is_its_own_group(tmp_path, write_result):
    write_result("a", "gsm8k", "base", 0.1)
    write_result("b", "reasoning_gym/chain_sum", "base", 0.5)
    row = section_table(render(tmp_path, tmp_path / "evals"), "Results")[0]
    assert list(row) == ["Model", "Protocol", "GSM8K", "chain_sum", "Avg", "Params"]
    assert row["Avg"] == "30.00"


@pytest.fixture
def sweep(tmp_path, write_result) -> str:
    """Base; L2D at midpoint 1..16 levels; Euler; an adaptive solver; guidance 1.5 and 2 (GSM8K, MMLU)."""
    write_result("base", "gsm8k", "base", 0.10)
    for levels, score in {1: 0.10, 2: 0.20, 4: 0.25, 8: 0.30, 16: 0.32}.items():
        write_result(f"levels{levels}", "gsm8k", "l2d_lora", score, levels=levels)
    write_result("default-mmlu", "mmlu", "l2d_lora", 0.42)
    write_result("euler", "gsm8k", "l2d_lora", 0.31, solver="euler", levels=15)
    write_result("adaptive-gsm8k", "gsm8k", "l2d_lora", 0.33, solver="fehlberg2", t_final=0.99, nfe=40.25)
    write_result("adaptive-mmlu", "mmlu", "l2d_lora", 0.43, solver="fehlberg2", t_final=0.99, nfe=55.5)
    for guidance, score in {1.5: 0.34, 2.0: 0.36}.items():
        write_result(f"guidance{guidance}", "gsm8k", "l2d_lora", score, guidance=guidance)
    return render(tmp_path, tmp_path / "evals")


def test_each_decoding_gets_its_own_row_named_by_what_differs(sweep):
    names = [row["Model"] for row in section_table(sweep, "Results")]
    assert names[:2] == ["smollm2-135m", "L2D-LoRA"]  # the default decoding first
    assert set(names[2:]) == {"L2D-LoRA (midpoint, 1 NFE)", "L2D-LoRA (midpoint, 3 NFE)",
                              "L2D-LoRA (midpoint, 7 NFE)", "L2D-LoRA (midpoint, 31 NFE)",
                              "L2D-LoRA (euler, 15 NFE)", "L2D-LoRA (fehlberg2, adaptive)",
                              "L2D-LoRA + guidance 1.5", "L2D-LoRA + guidance 2"}


def test_average_over_missing_tasks_is_marked(sweep):
    rows = {row["Model"]: row for row in section_table(sweep, "Results")}
    assert rows["L2D-LoRA"]["Avg"] == "36.00"  # GSM8K and MMLU
    assert rows["L2D-LoRA (euler, 15 NFE)"]["Avg"] == "31.00*"  # GSM8K only
    assert rows["L2D-LoRA (euler, 15 NFE)"]["MMLU"] == "-"


def test_nfe_table_has_one_series_per_solver(sweep):
    table = section_table(sweep, "Score against NFE")
    rows = [(r["Task"], r["Model"], r["NFE"], r["Score %"].split()[0]) for r in table]
    gsm8k = [row[1:] for row in rows if row[0] == "GSM8K"]
    assert gsm8k[0] == ("smollm2-135m (no diffusion)", "1", "10.00")
    midpoint = [(nfe, score) for name, nfe, score in gsm8k if name == "L2D-LoRA"]
    assert midpoint == [("1.0", "10.00"), ("3.0", "20.00"), ("7.0", "25.00"), ("15.0", "30.00"), ("31.0", "32.00")]
    assert ("L2D-LoRA (euler)", "15.0", "31.00") in gsm8k
    assert ("L2D-LoRA (fehlberg2, adaptive)", "40.2", "33.00") in gsm8k


def test_adaptive_nfe_per_task(sweep):
    assert section_table(sweep, "NFE per token of adaptive") == [
        {"Model": "L2D-LoRA (fehlberg2, adaptive)", "GSM8K, paper": "40.2", "MMLU, paper": "55.5", "Mean": "47.9"}]


def test_guidance_table(sweep):
    [row] = section_table(sweep, "Score against guidance")
    assert (row["Task"], row["Model"]) == ("GSM8K", "L2D-LoRA")
    assert row["w = 1.5"].startswith("34.00 ±") and row["w = 2"].startswith("36.00 ±")


def test_rows_of_different_checkpoints_are_told_apart(tmp_path, write_result):
    write_result("a", "gsm8k", "l2d_lora", 0.3, checkpoint="multirun/sigma/0/export")
    write_result("b", "gsm8k", "l2d_lora", 0.4, checkpoint="multirun/sigma/1/export")
    write_result("c", "gsm8k", "l2d_lora", 0.5, checkpoint="runs/cosmap/export", label="L2D cosmap")
    names = [row["Model"] for row in section_table(render(tmp_path, tmp_path / "evals"), "Results")]
    assert names == ["L2D-LoRA [0]", "L2D-LoRA [1]", "L2D cosmap"]


def test_every_row_of_a_checkpoint_names_it_once_two_checkpoints_share_a_method(tmp_path, write_result):
    """Not only the rows whose names collide: a decoding only one checkpoint has still says whose it is."""
    write_result("a2", "gsm8k", "l2d_lora", 0.3, checkpoint="runs/l2d_base/export", levels=2)
    write_result("a16", "gsm8k", "l2d_lora", 0.3, checkpoint="runs/l2d_base/export", levels=16)
    write_result("b2", "gsm8k", "l2d_lora", 0.4, checkpoint="runs/l2d_on_lora/export", levels=2)
    names = [row["Model"] for row in section_table(render(tmp_path, tmp_path / "evals"), "Results")]
    assert sorted(names) == ["L2D-LoRA (midpoint, 3 NFE) [l2d_base]", "L2D-LoRA (midpoint, 3 NFE) [l2d_on_lora]",
                             "L2D-LoRA (midpoint, 31 NFE) [l2d_base]"]


def test_a_rerun_replaces_the_older_result(tmp_path, write_result, caplog):
    old = write_result("old", "gsm8k", "base", 0.1)
    new = write_result("new", "gsm8k", "base", 0.2)
    stat = old.stat()
    os.utime(new, (stat.st_atime + 10, stat.st_mtime + 10))
    [row] = section_table(render(tmp_path, tmp_path / "evals"), "Results")
    assert row["GSM8K"].startswith("20.00")
    assert "using the newer" in caplog.text and str(new) in caplog.text


def test_loss_per_t_bin_averages_the_end_of_training(tmp_path, training_run):
    rows = section_table(render(tmp_path, training_run), "Loss per diffusion time")
    assert [(r["Run"], r["Split"]) for r in rows] == [("l2d_lora sigma32", "train"), ("l2d_lora sigma32", "val")]
    assert list(rows[0])[2:] == [f"t = {(i + 0.5) / 10:.2f}" for i in range(10)]
    # train: 10 values per bin, the last 2 (steps 8, 9) averaged; val: 2 values, the last one (step 9)
    assert rows[0]["t = 0.05"] == f"{6.0 - 0.085:.3f}" and rows[0]["t = 0.95"] == f"{6.0 - 4.5 - 0.085:.3f}"
    assert rows[1]["t = 0.05"] == f"{6.0 - 0.09 + 0.2:.3f}"
    [run] = section_table(render(tmp_path, training_run), "Inputs")
    assert (run["Params"], run["Wall time"]) == ("73M", "1.5 h")


def test_runs_of_a_sweep_are_named_by_the_overrides_they_differ_in(tmp_path):
    for sigma in (32, 64):
        write_run(tmp_path / "multirun" / str(sigma // 32 - 1), [f"sigma={sigma}", "model=tiny"])
    rows = section_table(render(tmp_path, tmp_path / "multirun"), "Loss per diffusion time")
    assert [r["Run"] for r in rows] == ["l2d_lora sigma=32", "l2d_lora sigma=32", "l2d_lora sigma=64",
                                        "l2d_lora sigma=64"]


def test_a_run_trained_on_a_sibling_run_is_named_by_the_sibling_not_by_where_it_lies(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs / "lora", ["method=lora"], method="lora")
    write_run(runs / "l2d_on_lora", [f"finetuned={runs / 'lora' / 'export'}", "lr=3e-4"])
    write_run(runs / "l2d_elsewhere", [f"finetuned={tmp_path / 'other' / 'export'}"])
    names = {row["Run"] for row in section_table(render(tmp_path, runs), "Validation loss at fixed t")}
    assert "l2d_lora finetuned=lora/export lr=3e-4" in names
    assert f"l2d_lora finetuned={tmp_path / 'other' / 'export'}" in names  # outside the runs' folder: as given


def test_a_lone_run_in_a_folder_named_after_its_method_is_named_once(tmp_path):
    from l2d.report.inputs import read_run
    from l2d.report.rows import run_labels

    run = read_run(write_run(tmp_path / "runs" / "l2d_lora", ["sigma=8"]))
    other = read_run(write_run(tmp_path / "runs" / "sigma8", ["sigma=8"]))
    assert run_labels([run]) == {run: "l2d_lora"}  # not "l2d_lora l2d_lora"
    assert run_labels([other]) == {other: "l2d_lora sigma8"}


def test_checkpoints_given_one_absolute_and_one_relative_keep_their_own_form():
    assert short_paths(["/data/runs/a/export", "runs/b/export"]) == ["/data/runs/a", "runs/b"]
    assert short_paths(["/data/runs/a/export", "/data/runs/b/export"]) == ["a", "b"]


def test_loss_at_fixed_t_takes_the_last_validation_with_plain_lms_as_reference(tmp_path):
    write_run(tmp_path / "runs" / "l2d", ["sigma=64"])
    write_run(tmp_path / "runs" / "lora", ["method=lora"], method="lora")
    text = render(tmp_path, tmp_path / "runs")
    rows = {row["Run"]: row for row in section_table(text, "Validation loss at fixed t")}
    assert len(rows) == 2
    [l2d] = [row for name, row in rows.items() if name.startswith("l2d_lora")]
    [lora] = [row for name, row in rows.items() if name.endswith("(next-token)")]
    assert (l2d["t = 0"], l2d["t = 1"]) == ("6.200", "3.100")  # the last validation, not the first
    assert lora["t = 0"] == lora["t = 1"] == "2.500"  # LoRA's teacher-forced loss, the same at every t
    assert (tmp_path / "report" / "loss_vs_t.png").stat().st_size > 0


def test_finetuned_lms_are_reference_lines_of_the_nfe_curves(tmp_path, write_result):
    write_result("lora", "gsm8k", "lora", 0.40)
    for levels, score in {2: 0.20, 8: 0.30}.items():
        write_result(f"levels{levels}", "gsm8k", "l2d_lora", score, levels=levels)
    rows = section_table(render(tmp_path, tmp_path / "evals"), "Score against NFE")
    assert (rows[0]["Model"], rows[0]["NFE"], rows[0]["Score %"].split()[0]) == ("LoRA (no diffusion)", "1", "40.00")


def test_a_score_of_zero_plots_with_its_interval(tmp_path, write_result):
    """0/500 at one level (e.g. levels 1, the base, before it knows the answer format), more at others."""
    path = write_result("levels1", "gsm8k", "l2d_lora", 0.0, levels=1, n=500)
    data = json.loads(path.read_text())
    data["summary"]["ci95_low"] = 4.336808689942018e-19  # as wilson_interval once wrote it
    path.write_text(json.dumps(data))
    write_result("levels8", "gsm8k", "l2d_lora", 0.3, levels=8, n=500)
    render(tmp_path, tmp_path / "evals")
    assert (tmp_path / "report" / "accuracy_vs_nfe.png").stat().st_size > 0


def test_more_steps_are_compared_on_the_same_problems(tmp_path, write_result):
    """33 problems gained and 14 lost from levels 2 to 16 (the sigma-8 arm's test counts): the two Wilson intervals
    overlap, the paired exact McNemar test does not (p = 0.0079); levels 1 (the LM alone) is not a reference."""
    outcomes = {2: [True] * 69 + [True] * 14 + [False] * 33 + [False] * 384,
                16: [True] * 69 + [False] * 14 + [True] * 33 + [False] * 384,
                1: [False] * 500}
    for levels, correct in outcomes.items():
        path = write_result(f"levels{levels}", "gsm8k", "l2d_lora", sum(correct) / 500, levels=levels, n=500)
        data = json.loads(path.read_text())
        data["records"] = [{**data["records"][0], "id": str(i), "correct": c} for i, c in enumerate(correct)]
        path.write_text(json.dumps(data))
    rows = section_table(render(tmp_path, tmp_path / "evals"), "More steps, paired")
    assert len(rows) == 1
    assert (rows[0]["NFE"], rows[0]["Problems"], rows[0]["Gained / lost"]) == ("3.0 → 31.0", "500", "+33 / −14")
    assert rows[0]["Change (95%)"].startswith("+3.8 (+") and float(rows[0]["p"]) == pytest.approx(0.00794, abs=1e-5)


def test_with_one_completion_the_paired_p_is_mcnemars_exact_binomial_tail():
    from l2d.tasks.summary import sign_flip_p

    def mcnemar(gained, lost):  # differences of right/wrong: +1 gained, -1 lost, 0 unchanged
        return sign_flip_p([1.0] * gained + [-1.0] * lost + [0.0] * 7)

    assert mcnemar(0, 0) == 1.0 and mcnemar(5, 5) == 1.0
    assert mcnemar(6, 0) == pytest.approx(2 / 64)  # all six discordant problems one way
    assert mcnemar(3, 1) == mcnemar(1, 3) == pytest.approx(2 * 5 / 16)
    assert mcnemar(33, 14) == pytest.approx(0.00794, abs=1e-5)


def test_a_later_decoding_field_at_its_default_shares_the_older_results_row(tmp_path, write_result):
    write_result("old", "gsm8k", "l2d_lora", 0.30, levels=2)  # written before results carried t_start
    write_result("new", "gsm8k", "l2d_lora", 0.32, levels=8, t_start=0.0)
    write_result("late", "gsm8k", "l2d_lora", 0.35, levels=8, t_start=0.2)
    rows = section_table(render(tmp_path, tmp_path / "evals"), "Score against NFE")
    assert sorted((row["Model"], row["NFE"]) for row in rows) == [
        ("L2D-LoRA", "15.0"), ("L2D-LoRA", "3.0"), ("L2D-LoRA (from t = 0.2)", "15.0")]


def with_records(path, passed: list[list[bool]], protocol: dict | None = None) -> None:
    """Per-problem records with several completions each (`passed`), and the protocol the file records."""
    data = json.loads(path.read_text())
    data["records"] = [{**data["records"][0], "id": str(i), "correct": p[0], "passed": p} for i, p in enumerate(passed)]
    if protocol is not None:
        data["protocol"] = protocol
    path.write_text(json.dumps(data))


def test_protocols_stay_apart_in_every_table_and_panel(tmp_path, write_result):
    """The same models under the paper's sampling and greedily: one row each, named alike, a protocol column
    that tells them apart, averages never across them, and one panel per protocol in Figure 1."""
    write_result("lora-paper", "gsm8k", "lora", 0.30)
    write_result("lora-greedy", "gsm8k", "lora", 0.40, temperature=0.0)
    for levels, (sampled, greedy) in {2: (0.20, 0.25), 8: (0.24, 0.26)}.items():
        write_result(f"paper{levels}", "gsm8k", "l2d_lora", sampled, levels=levels)
        write_result(f"greedy{levels}", "gsm8k", "l2d_lora", greedy, levels=levels, temperature=0.0)
    text = render(tmp_path, tmp_path / "evals")
    results = section_table(text, "Results")
    assert [(r["Model"], r["Protocol"]) for r in results] == [
        ("LoRA", "paper"), ("L2D-LoRA", "paper"), ("L2D-LoRA (midpoint, 3 NFE)", "paper"),
        ("LoRA", "greedy"), ("L2D-LoRA", "greedy"), ("L2D-LoRA (midpoint, 3 NFE)", "greedy")]
    assert [r["Avg"] for r in results] == ["30.00", "24.00", "20.00", "40.00", "26.00", "25.00"]
    nfe = section_table(text, "Score against NFE")
    assert {(r["Protocol"], r["Model"], r["Score %"].split()[0]) for r in nfe} == {
        ("paper", "LoRA (no diffusion)", "30.00"), ("paper", "L2D-LoRA", "20.00"), ("paper", "L2D-LoRA", "24.00"),
        ("greedy", "LoRA (no diffusion)", "40.00"), ("greedy", "L2D-LoRA", "25.00"), ("greedy", "L2D-LoRA", "26.00")}
    from l2d.report.inputs import collect
    from l2d.report.series import base_scores, nfe_curves

    found = nfe_curves(collect([tmp_path / "evals"])[0])
    assert list(found) == [("gsm8k", "paper"), ("gsm8k", "greedy")]
    assert [[r.score for r in members] for members in found["gsm8k", "greedy"].values()] == [[0.25, 0.26]]
    assert list(base_scores(collect([tmp_path / "evals"])[0])["gsm8k", "paper"]) == ["LoRA (no diffusion)"]


def test_the_recorded_protocol_names_the_row_and_sampled_scores_pair_by_problem(tmp_path, write_result):
    """Four completions per problem: a problem's score is the fraction right, and more steps are paired on
    those fractions within the protocol."""
    protocol = {"name": "paper", "preset": "paper", "temperature": 1.0, "samples": 4}
    fewer = write_result("levels2", "gsm8k", "l2d_lora", 0.25, levels=2, n=4)
    with_records(fewer, [[True, False, False, False]] * 4, protocol)
    more = write_result("levels8", "gsm8k", "l2d_lora", 0.75, levels=8, n=4)
    with_records(more, [[True, True, True, False]] * 4, protocol)
    [row] = section_table(render(tmp_path, tmp_path / "evals"), "More steps, paired")
    assert (row["Protocol"], row["Gained / lost"], row["Change (95%)"]) == ("paper", "+4 / −0",
                                                                            "+50.0 (+50.0 to +50.0)")
    assert float(row["p"]) == pytest.approx(2 / 16)


def test_an_rl_stage_reports_its_reward_by_level_count(tmp_path):
    """A metrics.csv as ReinforceModule logs it: rl/reward and rl/levels together once per rollout batch."""
    import csv

    run = tmp_path / "runs" / "l2d_rl"
    (run / ".hydra").mkdir(parents=True)
    levels = [2, 8, 2, 8, 2, 8]
    rewards = [0.10, 0.20, 0.15, 0.30, 0.20, 0.40]
    with (run / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "rl/reward", "rl/levels", "val/accuracy"])
        writer.writeheader()
        for batch, (n, reward) in enumerate(zip(levels, rewards, strict=True)):
            writer.writerow({"step": 2 * batch, "rl/reward": reward, "rl/levels": n})
        writer.writerow({"step": 11, "val/accuracy": 0.3})
    (run / "metrics.json").write_text(json.dumps({"method": "l2d_rl"}))
    (run / ".hydra" / "overrides.yaml").write_text("- method=l2d_rl\n")
    rows = section_table(render(tmp_path, run), "RL: rollout reward")
    assert [(r["Levels"], r["Batches"], r["First third"], r["Last third"], r["Change"]) for r in rows] == [
        ("2", "3", "10.0", "20.0", "+10.0"), ("8", "3", "20.0", "40.0", "+20.0")]
    assert (tmp_path / "report" / "rl_reward.png").stat().st_size > 0


def test_rl_panels_wrap_long_run_names_instead_of_running_into_each_other():
    """Two RL stages named by their long overrides (export paths among them): each panel's title stays over
    its own panel, clear of its neighbour's and inside the figure."""
    from pathlib import Path

    from l2d.report.plots import rl_reward
    from l2d.report.records import TrainingRun

    init = "init=experiments/runs/a_long_experiment_name/" + "nested/" * 4 + "export"
    held = "module.lr_multipliers={w_d:0,conditioning:0}"
    runs = [TrainingRun(path=Path(f"runs/{name}"), method=method,
                        overrides=[f"method={method}", f"{init}/{name}", held],
                        trainable_parameters=None, wall_seconds=None,
                        columns={"rl/reward": [0.1, 0.2, 0.3],
                                 "rl/levels": [2, 8, 2] if method == "l2d_rl" else [1] * 3})
            for name, method in (("lora_rl", "lora_rl"), ("l2d_rl", "l2d_rl"))]
    figure = rl_reward(runs)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    left, right = (ax.title.get_window_extent(renderer) for ax in figure.axes[:2])
    assert "\n" in figure.axes[0].get_title()
    assert left.x1 < right.x0, (left, right)
    assert 0 <= left.x0 and right.x1 <= figure.bbox.x1
