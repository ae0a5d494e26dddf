"""``wasmgym.grade``: untrusted programs and source code graded in the sandbox, as ``wasmgym grade`` does."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import _core

_LANGS = {".wasm": "wasm", ".wat": "wasm", ".c": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".py": "python"}


@dataclass(frozen=True)
class TestResult:
    """The verdict on one test and what the run used."""

    name: str
    verdict: str
    """``accepted``, ``wrong_answer``, ``runtime_error``, ``time_limit_exceeded``,
    ``memory_limit_exceeded``, ``output_limit_exceeded``, ``grading_error``, ..."""
    message: str
    score: float | None
    """1 for accepted, the checker's score, 0 for other failures, None for a grading error."""
    time_limit: str | None = None
    exit_code: int | None = None
    fuel_used: int = 0
    wall_time_ms: float = 0.0
    peak_memory_bytes: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == "accepted"


@dataclass(frozen=True)
class Summary:
    """Totals over a batch; ``score`` counts a grading error as 0 (never above what was earned)."""

    passed: int
    total: int
    score: float
    grading_errors: int
    verdicts: dict[str, int] = field(default_factory=dict)
    wall_time_s: float = 0.0
    tests_per_second: float = 0.0


@dataclass(frozen=True)
class Report:
    """What ``grade`` returns: one result per test, in the order given, and the totals."""

    tests: list[TestResult]
    summary: Summary

    @property
    def score(self) -> float:
        return self.summary.score

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Report:
        return Report([TestResult(**t) for t in doc["tests"]], Summary(**doc["summary"]))


def _bytes_of(program: str | bytes | os.PathLike[str], what: str) -> bytes:
    if isinstance(program, bytes):
        return program
    path = Path(program)
    if not path.is_file():
        try:
            return _core.builtin_program(str(program))
        except ValueError:
            raise FileNotFoundError(f"{what} {str(program)!r} is neither a file nor a built-in example") from None
    return path.read_bytes()


def grade(
    program: str | bytes | os.PathLike[str] | None = None,
    tests: str | os.PathLike[str] | Iterable[dict[str, Any]] = (),
    *,
    source: str | None = None,
    language: str | None = None,
    checker: str | bytes | os.PathLike[str] | None = None,
    exact: bool = False,
    fuel: int | None = None,
    time_limit_s: float | None = None,
    memory_mib: int = 256,
    jobs: int | None = None,
    dir: str | os.PathLike[str] | None = None,
) -> Report:
    """Grades a program on tests in the sandbox, one verdict per test.

    The program is ``program`` (a path to a ``.wasm``/``.wat``/``.c``/``.cpp``/``.py`` file, module
    bytes, or a built-in example's name) or ``source`` code with its ``language`` ("python", "c",
    "cpp"). ``tests`` is a directory of ``NAME.in``/``NAME.out`` pairs, a ``.jsonl`` file, or a list of
    test dicts in the JSONL format (``stdin``/``expected_stdout``; ``fn_name``/``inputs``/``outputs``;
    ``test``/``entry_point``: docs/grading.md). The GIL is released while grading."""
    if (program is None) == (source is None):
        raise ValueError("give the program as `program` (a path or module bytes) or as `source` (with `language`)")
    if source is not None:
        if language is None:
            raise ValueError("`source` needs `language`: 'python', 'c' or 'cpp'")
        data = source.encode()
    else:
        assert program is not None
        if language is None:
            language = "wasm" if isinstance(program, bytes) else _LANGS.get(Path(program).suffix, "wasm")
        data = _bytes_of(program, "program")
    kwargs: dict[str, Any] = {}
    if isinstance(tests, (str, os.PathLike)):
        kwargs["tests_path"] = os.fspath(tests)
    else:
        kwargs["tests_jsonl"] = "\n".join(json.dumps(t) for t in tests)
    report = _core.grade(
        data,
        language,
        checker=None if checker is None else _bytes_of(checker, "checker"),
        exact=exact,
        fuel=fuel,
        time_limit_s=time_limit_s,
        memory_mib=memory_mib,
        jobs=jobs,
        dir=None if dir is None else os.fspath(dir),
        **kwargs,
    )
    return Report.from_json(json.loads(report))
