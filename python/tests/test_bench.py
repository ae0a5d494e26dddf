"""Smoke test of ``python -m wasmgym.bench``: it runs and reports every figure (never how fast)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def doc() -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "wasmgym.bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_document_has_its_sections(doc: dict) -> None:
    for key in ("machine", "versions", "config", "loadavg", "results", "ratios", "goals", "skipped", "notes"):
        assert key in doc
    assert doc["machine"]["cpu_model"]
    assert doc["machine"]["cores"] >= 1
    for key in ("python", "numpy", "gymnasium", "wasmgym", "pyspiel", "envpool"):
        assert key in doc["versions"]
    assert doc["versions"]["wasmgym"] and doc["versions"]["gymnasium"] and doc["versions"]["numpy"]
    assert doc["config"]["quick"] is True
    assert doc["config"]["threads"] == 2
    assert "start" in doc["loadavg"] and len(doc["loadavg"]["start"]) == 3


def test_every_required_peer_has_positive_figures(doc: dict) -> None:
    required = [
        "wasmgym_fork",
        "wasmgym_native_fork",
        "wasmgym_snapshot_restore",
        "wasmgym_native_snapshot",
        "wasmgym_native_restore",
        "gym_deepcopy",
        "wasmgym_step",
        "wasmgym_native_step",
        "gym_unwrapped_step",
        "gym_make_step",
        "wasmgym_vector_t1",
        "wasmgym_vector_t2",
        "gym_sync",
    ]
    if importlib.util.find_spec("pyspiel") is not None:
        required += ["pyspiel_clone_tic_tac_toe", "pyspiel_clone_connect_four"]
    results = doc["results"]
    for name in required:
        assert name in results, name
    for name, r in results.items():
        assert r["median_ns"] > 0 and r["ops_per_s"] > 0, name
        assert r["ops_per_round"] >= 1 and len(r["rounds_ns"]) == doc["config"]["rounds"], name
        assert all(x > 0 for x in r["rounds_ns"]), name
        if r["group"] == "vector":
            assert r["steps_per_s"] > 0 and r["num_envs"] >= 1, name
    assert results["wasmgym_vector_t1"]["num_envs"] == doc["config"]["num_envs"]
    # An Async peer was measured, or its failure is written down.
    assert any(k.startswith("gym_async") for k in results) or any("AsyncVectorEnv" in n for n in doc["notes"])
    # EnvPool was measured, or why not is written down.
    assert "envpool_t2" in results or any(k.startswith("envpool") for k in doc["skipped"])


def test_ratios_and_goals_are_reported(doc: dict) -> None:
    assert all(v > 0 for v in doc["ratios"].values())
    assert "gym_deepcopy / wasmgym_fork" in doc["ratios"]
    assert "wasmgym_vector_t2 / gym_sync" in doc["ratios"]
    goals = doc["goals"]
    for key in (
        "fork <= 3 us (wrapper env.fork())",
        "step <= 2 us (wrapper env.step())",
        "vector >= 10x SyncVectorEnv",
    ):
        assert key in goals
    for g in goals.values():
        assert isinstance(g["met"], bool)
