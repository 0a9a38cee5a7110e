"""Task loaders: BIG-bench JSON (with subtasks), GSM8K JSONL, HumanEval; and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_collab.evaluation.tasks import TaskFileError, load_task, select


def write_bigbench(folder: Path, examples: list[dict], name: str = "task.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"name": folder.name, "examples": examples}))
    return path


CHOICE = {"input": "How many legs do horses have?", "target_scores": {"two": 0, "four": 1, "six": 0}}
FREE = {"input": "What is 6 times 7?", "target": "42"}


def test_bigbench_choice_and_free_answer(tmp_path: Path):
    path = write_bigbench(tmp_path / "mixed", [CHOICE, FREE, {"input": "Capital of France?", "target": ["Paris"]}])
    task = load_task(str(path))
    kinds = [item.kind for item in task.items]
    assert kinds == ["choice", "number", "text"]
    assert task.items[0].gold == "four" and set(task.items[0].options) == {"two", "four", "six"}
    assert task.items[1].gold == "42" and task.items[2].gold == "Paris"


def test_several_correct_options_are_all_accepted(tmp_path: Path):
    example = {"input": "Colour of a tongue?", "target_scores": {"red": 1, "pink": 1, "blue": 0}}
    item = load_task(str(write_bigbench(tmp_path / "t", [example]))).items[0]
    assert item.is_correct_option("red") and item.is_correct_option("pink")
    assert not item.is_correct_option("blue") and not item.is_correct_option(None)


def write_task(folder: Path, examples: list[dict], **fields: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "task.json"
    path.write_text(json.dumps({"name": folder.name, "examples": examples, **fields}))
    return path


def graded(item, reply: str) -> bool:
    from edge_collab.evaluation.grading import grade
    from edge_collab.evaluation.prompts import build_question

    return grade(item, build_question(item), reply).correct


def test_every_listed_target_counts_as_bigbench_exact_str_match_does(tmp_path: Path):
    # object_counting's shape: a list of targets, the number in words and in digits.
    counting = {"input": "I have a flute and two violins. How many instruments?", "target": ["three", "3"]}
    item = load_task(str(write_task(tmp_path / "counting", [counting], preferred_score="exact_str_match"))).items[0]
    assert item.kind == "number" and item.targets == ("three", "3") and item.gold == "3"
    for reply in ("Answer: 3", "Answer: three", "Answer: Three.", "Answer: 3 instruments", "Answer: three instruments"):
        assert graded(item, reply), reply
    for reply in ("Answer: 4", "Answer: four", "Answer: none"):
        assert not graded(item, reply), reply
    # A list of text targets: any of them.
    capital = {"input": "Capital of the Netherlands?", "target": ["Amsterdam", "amsterdam, NL"]}
    item = load_task(str(write_task(tmp_path / "capital", [capital]))).items[0]
    assert item.kind == "text" and graded(item, "Answer: Amsterdam, NL") and not graded(item, "Answer: The Hague")


def test_numbers_in_words_count_only_where_the_targets_spell_them(tmp_path: Path):
    item = load_task(str(write_task(tmp_path / "digits", [{"input": "6 times 7?", "target": "42"}]))).items[0]
    assert graded(item, "Answer: 42") and not graded(item, "Answer: forty-two")


def test_an_example_with_both_targets_is_graded_by_the_preferred_score(tmp_path: Path):
    # arithmetic's shape: a target and target_scores with decoys; it prefers exact_str_match.
    example = {"input": "What is 1 plus 2?", "target": "3", "target_scores": {"3": 1.0, "banana": 0.0, "4": 0.0}}
    exact = load_task(str(write_task(tmp_path / "arith", [example], preferred_score="exact_str_match"))).items[0]
    assert exact.kind == "number" and exact.options == () and graded(exact, "Answer: 3")
    # strategyqa's shape: the same, but preferring multiple_choice_grade.
    choice = load_task(str(write_task(tmp_path / "sqa", [example], preferred_score="multiple_choice_grade"))).items[0]
    assert choice.kind == "choice" and set(choice.options) == {"3", "banana", "4"}
    unstated = load_task(str(write_task(tmp_path / "plain", [example]))).items[0]
    assert unstated.kind == "choice"  # as before: target_scores decide when the task does not say


def test_the_task_prefix_opens_every_question(tmp_path: Path):
    # cause_and_effect's shape: the question is in task_prefix, the input empty.
    example = {
        "input": "",
        "target_scores": {"It rained, so the street got wet.": 1, "The street got wet, so it rained.": 0},
    }
    path = write_task(tmp_path / "cause", [example], task_prefix="Which sentence makes more sense?")
    item = load_task(str(path)).items[0]
    assert item.question == "Which sentence makes more sense?"
    older = write_task(tmp_path / "older", [FREE], prefix="Answer with a number.\n")
    assert load_task(str(older)).items[0].question == "Answer with a number.\n\nWhat is 6 times 7?"
    plain = load_task(str(write_task(tmp_path / "none", [FREE], task_prefix=""))).items[0]
    assert plain.question == "What is 6 times 7?"


def test_several_best_scores_and_fractional_scores(tmp_path: Path):
    example = {"input": "Pick a good one", "target_scores": {"a": 0.5, "b": 1.0, "c": 1.0, "d": 0.0}}
    item = load_task(str(write_task(tmp_path / "frac", [example]))).items[0]
    assert item.accepted == ("b", "c") and graded(item, "Answer: (" + "ABCD"[_letter(item, "c")] + ")")


def _letter(item, option: str) -> int:
    from edge_collab.evaluation.prompts import build_question

    return build_question(item).options.index(option)


def test_subtask_folders(tmp_path: Path):
    root = tmp_path / "maths"
    write_bigbench(root / "easy", [FREE])
    write_bigbench(root / "hard", [CHOICE, FREE])
    (root / "task.json").write_text(json.dumps({"name": "maths", "description": "no examples here"}))
    task = load_task(str(root))
    assert len(task.items) == 3
    assert {item.id.split(":")[0] for item in task.items} == {"maths/easy", "maths/hard"}


def test_fetched_task_names_and_subtasks(isolated_data_dir: Path):
    root = isolated_data_dir / "datasets" / "bigbench" / "maths"
    write_bigbench(root / "easy", [FREE, FREE])
    assert len(load_task("maths").items) == 2
    assert load_task("maths/easy").name == "maths/easy"
    with pytest.raises(TaskFileError, match="no subtask 'medium'.*easy"):
        load_task("maths/medium")
    with pytest.raises(TaskFileError, match="edge-collab data fetch bigbench physics"):
        load_task("physics")


def test_gsm8k_jsonl(tmp_path: Path):
    path = tmp_path / "gsm.jsonl"
    path.write_text(
        json.dumps({"question": "2+2?", "answer": "two and two\n#### 4"})
        + "\n"
        + json.dumps({"question": "1,000+1?", "answer": "#### 1,001"})
        + "\n"
    )
    task = load_task(str(path))
    assert [item.gold for item in task.items] == ["4", "1,001"]
    assert all(item.kind == "number" for item in task.items)


def test_humaneval_jsonl(tmp_path: Path):
    path = tmp_path / "HumanEval.jsonl"
    record = {"task_id": "HumanEval/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass"}
    path.write_text(json.dumps(record) + "\n")
    item = load_task(str(path)).items[0]
    assert item.kind == "code" and item.gold == "f" and item.extra["test"].startswith("def check")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"examples": "nope"}), "no 'examples' list"),
        (json.dumps({"examples": [{"target": "1"}]}), "example 0 has no 'input'"),
        (json.dumps({"examples": [{"input": "q"}]}), "neither 'target_scores' nor a 'target'"),
        (json.dumps({"examples": [{"input": "q", "target_scores": {"a": 0}}]}), "positive one"),
        (json.dumps({"examples": [{"input": "q", "target_scores": {"a": "1"}}]}), "needs numbers"),
        (json.dumps({"examples": [{"input": "q", "target": 3}]}), "'target' must be a string or a list"),
        (json.dumps({"examples": [{"input": "q", "target": ["a", 3]}]}), "'target' must be a string or a list"),
        (json.dumps({"examples": [{"input": "q", "target": ["", " "]}]}), "neither 'target_scores' nor a 'target'"),
        (json.dumps({"task_prefix": 7, "examples": [{"input": "q", "target": "a"}]}), "'task_prefix' must be text"),
    ],
)
def test_malformed_bigbench_files_name_the_file_and_the_problem(tmp_path: Path, content: str, message: str):
    path = tmp_path / "broken" / "task.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(TaskFileError, match=message) as error:
        load_task(str(path))
    assert str(path) in str(error.value)


def test_malformed_gsm8k_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(TaskFileError, match=r"bad.jsonl:1: 'answer' must end with '#### <number>'"):
        load_task(str(path))


def test_unknown_file_type(tmp_path: Path):
    path = tmp_path / "task.csv"
    path.write_text("a,b")
    with pytest.raises(TaskFileError, match="unknown task file type"):
        load_task(str(path))


def test_selection_is_a_fixed_sample_that_grows_by_extension(tmp_path: Path):
    task = load_task(str(write_bigbench(tmp_path / "many", [dict(FREE, input=f"q{i}") for i in range(300)])))
    first_ten = select(task, "test", 10)
    assert select(task, "test", 20)[:10] == first_ten
    test_ids = {item.id for item in select(task, "test")}
    train_ids = {item.id for item in select(task, "train")}
    assert not test_ids & train_ids and len(test_ids) + len(train_ids) == 300
    assert 10 <= len(train_ids) <= 60
    small = load_task(str(write_bigbench(tmp_path / "few", [FREE] * 5)))
    assert len(select(small, "test")) == 5 and select(small, "train") == []
