"""Reward functions in TRL's and verl's shapes, and the TRL environment_factory adapter."""

import inspect
import json
import re

import pytest

import wasmgym
from wasmgym.rewards import code_reward, compute_score, env_reward, extract_code, ground_truth_tests
from wasmgym.trl import TextEnvironment, environment_factory

GOOD = "Here you go:\n```python\nimport sys\nprint(sum(map(int, sys.stdin.read().split())))\n```\n"
WRONG = "```python\nprint(0)\n```"
HALF = "```python\nimport sys\nxs = list(map(int, sys.stdin.read().split()))\nprint(xs[0] + xs[1] if xs[0] > 0 else 0)\n```"
TRUTH = {"inputs": ["1 2", "-1 -2"], "outputs": ["3", "-3"]}


def test_extract_code_takes_the_last_matching_block() -> None:
    text = "```text\nnot code\n```\n```python\nfirst\n```\nthen\n```py\nsecond\n```"
    assert extract_code(text, "python") == "second\n"
    assert extract_code("print(1)", "python") == "print(1)"


def test_tests_of_reads_every_ground_truth_form() -> None:
    assert ground_truth_tests(json.dumps(TRUTH))[1] == {"name": "test 1", "stdin": "-1 -2", "expected_stdout": "-3"}
    calls = ground_truth_tests({"inputs": [[1]], "outputs": [2], "fn_name": "f"})
    assert calls == [{"name": "calls", "fn_name": "f", "inputs": [[1]], "outputs": [2]}]
    assert ground_truth_tests({"test": "def check(c): pass", "entry_point": "f"})[0]["entry_point"] == "f"
    with pytest.raises(ValueError, match="one output per input"):
        ground_truth_tests({"inputs": [1], "outputs": []})


def test_trl_reward_function_shape_and_scores() -> None:
    reward = code_reward("python")
    assert reward.__name__ == "wasmgym_python_tests"
    conversational = [[{"role": "assistant", "content": GOOD}]]
    scores = reward(
        prompts=["p"] * 4,
        completions=[GOOD, WRONG, HALF, conversational[0]],
        completion_ids=[[1]] * 4,
        tests=[TRUTH, TRUTH, TRUTH, TRUTH],
        trainer_state=None,
    )
    assert scores == [1.0, 0.0, 0.5, 1.0]
    assert reward(prompts=["p"], completions=[GOOD, GOOD], tests=[None, []]) == [None, None]
    strict = code_reward("python", partial=False)
    assert strict(completions=[HALF], tests=[TRUTH]) == [0.0]
    with pytest.raises(KeyError, match="tests_column"):
        reward(completions=[GOOD], answer=["3"])


def test_verl_compute_score_signature_and_scores() -> None:
    params = list(inspect.signature(compute_score).parameters)
    assert params[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    assert compute_score("apps", GOOD, json.dumps(TRUTH)) == 1.0
    assert compute_score("apps", HALF, TRUTH, extra_info={"language": "python"}) == 0.5
    assert compute_score("apps", "```python\ndef broken(:\n```", TRUTH) == 0.0
    c = "```c\n#include <stdio.h>\nint main(){int a,b;scanf(\"%d %d\",&a,&b);printf(\"%d\\n\",a+b);}\n```"
    assert compute_score("codecontests", c, TRUTH, extra_info={"language": "c"}) == 1.0


def test_env_reward_plays_completions_and_checker_scores_the_state() -> None:
    reward = env_reward("text_adventure")
    # A seed whose key is in the library (north of the hall): the walk there and the take pay 0.1.
    seed = next(s for s in range(100) if _key_in_library(s))
    good, bad = reward(completions=["north\ntake key", "dance\nsing"], seed=[seed, seed])
    assert good == 0.1 and bad == 0.0
    # answer_env pays nothing itself: the reward checker scores the answer typed into it.
    checker = wasmgym._core.builtin_program("answer_checker")
    scored = env_reward("answer_env", checker=checker)
    env = wasmgym.make("answer_env")
    question, _ = env.reset(seed=5)
    a, b = (int(n) for n in re.findall(r"\d+", question)[:2])
    right, wrong = scored(completions=[f"{a + b}\n=", "1\n="], seed=[5, 5])
    assert right == 1.0 and 0.0 <= wrong < 1.0


def _key_in_library(seed: int) -> bool:
    env = wasmgym.make("text_adventure")
    env.reset(seed=seed)
    env.step("north")
    return env.step("take key")[1] == 0.1


def test_environment_factory_adapter() -> None:
    factory = environment_factory("text_adventure")
    env = factory()
    assert isinstance(env, TextEnvironment)
    first = env.reset(seed=1, options={"key_room": "library"})
    assert "Hall" in first and "Valid actions" in first
    assert "not possible" in env.act("x" * 100)  # longer than the action space allows
    assert env.get_reward() == 0.0
    assert "Library" in env.act("north")
    env.act("take key")
    assert env.get_reward() == 0.1
    public = [m for m in dir(env) if not m.startswith("_") and callable(getattr(env, m))]
    assert sorted(public) == ["act", "get_reward", "reset"]
    assert "Args:" in (env.act.__doc__ or "")
