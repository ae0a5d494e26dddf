"""Reward functions in the shapes trainers call, grading in the sandbox.

* TRL (``GRPOTrainer(reward_funcs=[...])``): ``code_reward(...)`` and ``env_reward(...)`` return
  functions called by keyword with ``prompts``, ``completions`` and the dataset's columns, returning
  ``list[float | None]`` (None: no tests for that sample), each with a ``__name__``.
* verl (``custom_reward_function``): ``compute_score(data_source, solution_str, ground_truth,
  extra_info=None, **kwargs) -> float``.

Code is taken from the completion's last fenced block (```python ... ```, any language tag, or the
whole text when there is none) and graded by ``wasmgym.grade``: untrusted code never leaves the
sandbox, and a score is never above what the program earned (a test the host could not run counts
as 0)."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._core import Checker, GradeError
from .env import make
from .grading import grade

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+#-]*)[^\n]*\n(.*?)```", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversation (a list of messages, the last
    assistant message's ``content``)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                content = message.get("content", "")
                if isinstance(content, list):  # multimodal content parts
                    return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
                return str(content)
    return "" if completion is None else str(completion)


def extract_code(text: str, language: str | None = None) -> str:
    """The code in a model's answer: the last fenced block tagged ``language`` (or untagged), else
    the last fenced block, else the whole text."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    aliases = {"python": {"python", "py", "python3"}, "c": {"c"}, "cpp": {"cpp", "c++", "cxx", "cc"}}
    wanted = aliases.get(language or "", {language} if language else set())
    tagged = [code for tag, code in blocks if tag.lower() in wanted or not tag]
    return (tagged or [code for _, code in blocks])[-1]


def ground_truth_tests(ground_truth: Any) -> list[dict[str, Any]]:
    """Test dicts (``wasmgym.grade``'s JSONL format) from a data set's ground truth: a list of test
    dicts; verl/APPS/SandboxFusion ``{"inputs": [...], "outputs": [...]}`` (stdin and expected stdout,
    or with ``fn_name`` a call per input); HumanEval ``{"test", "entry_point"}``; or any of them as JSON
    text."""
    if isinstance(ground_truth, (str, bytes)):
        try:
            ground_truth = json.loads(ground_truth)
        except json.JSONDecodeError as e:
            raise ValueError(f"ground truth is text but not JSON ({e}): give tests as a dict or a list") from None
    if isinstance(ground_truth, Mapping):
        if "test" in ground_truth and "entry_point" in ground_truth:
            return [{"name": "check", "test": ground_truth["test"], "entry_point": ground_truth["entry_point"]}]
        if "inputs" in ground_truth and "outputs" in ground_truth:
            inputs, outputs = list(ground_truth["inputs"]), list(ground_truth["outputs"])
            if len(inputs) != len(outputs):
                raise ValueError(f"ground truth has {len(inputs)} inputs and {len(outputs)} outputs: give one output per input")
            if ground_truth.get("fn_name"):
                return [{"name": "calls", "fn_name": ground_truth["fn_name"], "inputs": inputs, "outputs": outputs}]
            return [
                {"name": f"test {k}", "stdin": str(i), "expected_stdout": str(o)} for k, (i, o) in enumerate(zip(inputs, outputs))
            ]
        raise ValueError(
            f"ground truth with keys {sorted(ground_truth)}: expected inputs/outputs (and fn_name), or test/entry_point"
        )
    if isinstance(ground_truth, Iterable):
        tests = list(ground_truth)
        if all(isinstance(t, Mapping) for t in tests):
            return [dict(t) for t in tests]
    raise ValueError(f"cannot read tests from a {type(ground_truth).__name__}: give a dict, a list of dicts or JSON text")


def score_code(code: str, tests: list[dict[str, Any]], language: str = "python", *, partial: bool = True, **grade_kwargs: Any) -> float:
    """The fraction of ``tests`` the code passes (``partial``), or 1.0/0.0 for all or not all. Code
    that does not compile scores 0."""
    if not tests:
        raise ValueError("no tests to grade against")
    try:
        report = grade(source=code, language=language, tests=tests, **grade_kwargs)
    except GradeError as e:
        if getattr(e, "kind", "") in ("compile_error", "invalid_program"):
            return 0.0
        raise
    if partial:
        return report.summary.score
    return 1.0 if report.summary.passed == report.summary.total else 0.0


def code_reward(
    language: str = "python",
    *,
    tests_column: str = "tests",
    partial: bool = True,
    name: str | None = None,
    **grade_kwargs: Any,
) -> Callable[..., list[float | None]]:
    """A TRL reward function grading each completion's code on the tests in the data set's
    ``tests_column`` (any form ``ground_truth_tests`` reads). Rewards are the fraction of tests passed (or
    all-or-nothing with ``partial=False``); None where a sample has no tests. ``grade_kwargs`` go to
    ``wasmgym.grade`` (``time_limit_s``, ``memory_mib``, ``fuel``, ``jobs``)."""

    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        truths = columns.get(tests_column)
        if truths is None:
            raise KeyError(f"the data set has no column {tests_column!r} (columns: {sorted(columns)}): set tests_column")
        out: list[float | None] = []
        for completion, truth in zip(completions, truths):
            if truth is None:
                out.append(None)
                continue
            tests = ground_truth_tests(truth)
            if not tests:
                out.append(None)
                continue
            code = extract_code(completion_text(completion), language)
            out.append(score_code(code, tests, language, partial=partial, **grade_kwargs))
        return out

    reward.__name__ = name or f"wasmgym_{language}_tests"
    reward.__qualname__ = reward.__name__
    return reward


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> float:
    """verl's ``compute_score``: the fraction of the ground truth's tests the solution's code passes,
    graded in the sandbox. The language is ``extra_info["language"]`` (or ``kwargs["language"]``),
    default Python."""
    language = (extra_info or {}).get("language") or kwargs.pop("language", None) or "python"
    partial = bool(kwargs.pop("partial", True))
    code = extract_code(solution_str, language)
    return score_code(code, ground_truth_tests(ground_truth), language, partial=partial, **kwargs)


def env_reward(
    source: str,
    *,
    checker: str | bytes | None = None,
    seed_column: str = "seed",
    task_column: str | None = None,
    expected_column: str | None = None,
    name: str | None = None,
    max_actions: int = 100,
) -> Callable[..., list[float]]:
    """A TRL reward function that plays each completion in a text environment: one action per
    non-empty line (at most ``max_actions``), from a reset with the sample's ``seed_column`` (0 if
    absent). The reward is the episode's return, or, with a reward ``checker`` module, the checker's
    score of the final state (it queries a fork of the env; ``task_column``/``expected_column`` give
    it the task and the expected answer). An illegal action ends the play (what was earned stays)."""
    checker_module = None
    if checker is not None:
        data = checker if isinstance(checker, bytes) else open(checker, "rb").read()
        checker_module = Checker(data)

    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float]:
        out: list[float] = []
        for i, completion in enumerate(completions):
            seeds = columns.get(seed_column)
            seed = int(seeds[i]) if seeds is not None and seeds[i] is not None else 0
            env = make(source, illegal_action="terminate")
            env.reset(seed=seed)
            total = 0.0
            lines = [line.strip() for line in completion_text(completion).splitlines() if line.strip()]
            for action in lines[:max_actions]:
                _, r, terminated, truncated, info = env.step(action)
                total += float(r) if "illegal_action" not in info else 0.0
                if terminated or truncated:
                    break
            if checker_module is not None:
                task = str(columns[task_column][i]) if task_column else ""
                expected = str(columns[expected_column][i]) if expected_column else ""
                total, _message = checker_module.reward(env.native, task.encode(), expected.encode())
            out.append(total)
        return out

    reward.__name__ = name or f"wasmgym_{source}_return"
    reward.__qualname__ = reward.__name__
    return reward
