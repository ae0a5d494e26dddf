"""wasmgym.grade from Python: programs and source code in the sandbox, verdicts, honest scores."""

import json

import pytest

import wasmgym

SUM_TESTS = [
    {"name": "small", "stdin": "1 2", "expected_stdout": "3"},
    {"name": "negative", "stdin": "-5 2", "expected_stdout": "-3"},
    {"name": "wrong on purpose", "stdin": "1 1", "expected_stdout": "3"},
]


def test_grade_a_module_mirrors_the_cli() -> None:
    report = wasmgym.grade("sum", SUM_TESTS, jobs=2)
    assert [t.verdict for t in report.tests] == ["accepted", "accepted", "wrong_answer"]
    assert report.summary.passed == 2 and report.summary.total == 3
    assert report.score == pytest.approx(2 / 3)
    assert report.summary.verdicts == {"accepted": 2, "wrong_answer": 1}
    assert report.tests[0].stdout.strip() == "3" and report.tests[0].fuel_used > 0


def test_misbehaving_programs_get_verdicts_not_crashes() -> None:
    tests = [
        {"name": "loop", "stdin": "loop", "expected_stdout": ""},
        {"name": "bomb", "stdin": "bomb", "expected_stdout": ""},
        {"name": "panic", "stdin": "panic", "expected_stdout": ""},
        {"name": "sum", "stdin": "sum 2 3", "expected_stdout": "5"},
    ]
    report = wasmgym.grade("misbehave", tests, fuel=200_000_000, memory_mib=64, jobs=2)
    verdicts = {t.name: t.verdict for t in report.tests}
    assert verdicts == {
        "loop": "time_limit_exceeded",
        "bomb": "memory_limit_exceeded",
        "panic": "runtime_error",
        "sum": "accepted",
    }
    assert report.score == pytest.approx(0.25)


def test_grade_python_source_in_each_test_style() -> None:
    source = "def add(a, b):\n    return a + b\nimport sys\nif __name__ == '__main__':\n    print(sum(map(int, sys.stdin.read().split())))\n"
    tests = [
        {"name": "stdio", "stdin": "2 3", "expected_stdout": "5"},
        {"name": "calls", "fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [3, 7]},
        {"name": "asserts", "test": "def check(f):\n    assert f(2, 2) == 4\n", "entry_point": "add"},
        {"name": "wrong", "fn_name": "add", "inputs": [[1, 1]], "outputs": [3]},
    ]
    report = wasmgym.grade(source=source, language="python", tests=tests)
    assert [t.verdict for t in report.tests] == ["accepted", "accepted", "accepted", "wrong_answer"]


def test_grade_c_source_and_tests_from_a_file(tmp_path) -> None:
    source = '#include <stdio.h>\nint main(void){long a,b; if(scanf("%ld %ld",&a,&b)!=2) return 1; printf("%ld\\n",a+b); return 0;}\n'
    tests = tmp_path / "tests.jsonl"
    tests.write_text("\n".join(json.dumps(t) for t in SUM_TESTS))
    report = wasmgym.grade(source=source, language="c", tests=tests)
    assert [t.verdict for t in report.tests] == ["accepted", "accepted", "wrong_answer"]


def test_bad_input_gets_clear_errors() -> None:
    with pytest.raises(wasmgym.GradeError, match="compile") as e:
        wasmgym.grade(source="int main( {", language="c", tests=SUM_TESTS)
    assert e.value.kind == "compile_error"
    with pytest.raises(wasmgym.GradeError) as e:
        wasmgym.grade(b"not wasm at all", SUM_TESTS)
    assert e.value.kind == "invalid_program"
    with pytest.raises(wasmgym.GradeError, match="typo"):
        wasmgym.grade("sum", [{"name": "x", "stdin": "1", "expected_stdout": "1", "typo": 1}])
    with pytest.raises(ValueError, match="language"):
        wasmgym.grade(source="print(1)", tests=SUM_TESTS)
    with pytest.raises(FileNotFoundError):
        wasmgym.grade("no/such/file.wasm", SUM_TESTS)


def test_a_checker_scores_instead_of_the_diff() -> None:
    # sum_checker ignores the expected output: the "wrong on purpose" test is right by the checker.
    report = wasmgym.grade("sum", SUM_TESTS, checker="sum_checker")
    assert [t.verdict for t in report.tests] == ["accepted"] * 3
    checker = wasmgym.Checker(wasmgym._core.builtin_program("sum_checker"))
    assert checker.check(b"2 3", b"", b"5\n")[0] == 1.0
    score, message = checker.check(b"2 3", b"", b"6\n")
    assert score == 0.5 and message
