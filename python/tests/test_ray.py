"""wasmgym under Ray: snapshots as Ray objects, distributed rollouts, root-parallel MCTS and
snapshot hand-offs between actors, each equal bit for bit to the same computation in one process.

Uses python/examples/ray_search.py (imported by path) for the shared helpers and the actor class.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import wasmgym  # noqa: E402
import wasmgym.search  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ray_search.py"


def _load_example():
    name = "wasmgym_examples_ray_search"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None, EXAMPLE
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: Ray's pickler looks the module up by name
    spec.loader.exec_module(module)
    return module


rs = _load_example()

NUM_ACTORS = 3
SIMULATIONS = 1000


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def actors(cluster):
    return rs.make_actors(NUM_ACTORS)


@pytest.fixture(scope="module")
def result(actors):
    return rs.run(simulations=SIMULATIONS, seed=11, rollouts_per_actor=6, searches_per_actor=2, relay_turns=5,
                  actors=actors)


@pytest.fixture()
def root():
    env = rs.opening()
    return env, env.snapshot()


def test_workers_import_this_wasmgym(actors):
    where = ray.get([a.where.remote() for a in actors])
    assert [w["wasmgym"] for w in where] == [wasmgym.__file__] * NUM_ACTORS
    pids = {w["pid"] for w in where}
    assert len(pids) == NUM_ACTORS


def test_distributed_rollouts_equal_single_process(result):
    assert result["rollouts"] == result["local_rollouts"]
    flat = [r for per_actor in result["rollouts"] for r in per_actor]
    assert len(flat) == NUM_ACTORS * 6
    # Not a vacuous equality: different seeds play different games, and every game ended.
    assert len({r["state_hash"] for r in flat}) > 1
    assert all(r["terminated"] and not r["truncated"] and r["steps"] > 0 for r in flat)
    assert all(len(r["returns"]) == 2 and r["returns"][0] == -r["returns"][1] for r in flat)


def test_root_parallel_mcts_equals_single_process(result):
    assert result["searches"] == result["local_searches"]
    flat = [r for per_actor in result["searches"] for r in per_actor]
    assert all(sum(c["visits"] for c in r["children"]) == SIMULATIONS for r in flat)
    assert len({tuple(c["visits"] for c in r["children"]) for r in flat}) > 1, "different seeds, same trees"
    # The driver's sum, recomputed here from the single-process searches.
    visits: dict[int, int] = {}
    for per_actor in result["local_searches"]:
        for r in per_actor:
            for c in r["children"]:
                visits[c["action"]] = visits.get(c["action"], 0) + c["visits"]
    assert result["visits"] == visits
    assert sum(visits.values()) == NUM_ACTORS * 2 * SIMULATIONS
    assert result["action"] == max(sorted(visits), key=lambda a: visits[a])


def test_snapshot_hand_off_equals_continuous_play(result):
    relay, local = result["relay"], result["local_relay"]
    assert relay == local
    assert relay[0]["before_hash"] == result["root_hash"]
    # Each actor started exactly where the previous one stopped.
    for prev, cur in zip(relay, relay[1:]):
        assert cur["before_hash"] == prev["state_hash"]
    assert any(r["action"] is not None for r in relay)


def test_every_check_of_the_example_passes(result):
    failed = [name for name, passed in result["checks"].items() if not passed]
    assert not failed, failed
    assert result["ok"]


def test_same_seed_same_search_on_any_actor(actors, root):
    env, snap = root
    ref = ray.put(snap)
    a, b = ray.get([actors[0].searches.remote(ref, [5, 6], 500), actors[1].searches.remote(ref, [5, 6], 500)])
    local = rs.searches(wasmgym.make(rs.ENV), snap, [5, 6], 500)
    assert a == b == local
    assert a[0]["children"] != a[1]["children"]


def test_snapshot_pickled_through_ray_restores_to_the_same_state(actors, root):
    env, snap = root
    live_hash = env.state_hash()
    ref = ray.put(snap)
    back = ray.get(ref)
    assert isinstance(back, wasmgym.Snapshot)
    assert back.to_bytes() == snap.to_bytes()
    assert back.steps == len(rs.OPENING) == snap.steps
    assert pickle.loads(pickle.dumps(snap)).to_bytes() == snap.to_bytes()
    # Restored in other processes.
    hashes = ray.get([a.state_hash_of.remote(ref) for a in actors])
    assert hashes == [live_hash.hex()] * NUM_ACTORS
    # A snapshot made by an actor, restored in the driver.
    returned = ray.get(actors[-1].snapshot_of.remote(ref))
    fresh = wasmgym.make(rs.ENV)
    fresh.restore(returned)
    assert fresh.state_hash() == live_hash
    # And it plays on the same: one step and one rollout from both.
    for e in (env, fresh):
        e.step(0)
    assert fresh.state_hash() == env.state_hash()
    assert fresh.native.rollout(3) == env.native.rollout(3)
    assert fresh.state_hash() == env.state_hash()


def test_corrupt_snapshot_bytes_raise(actors, root):
    _env, snap = root
    data = snap.to_bytes()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    for bad in (bytes(flipped), data[: len(data) // 2], data[:8], b"", b"not a snapshot at all"):
        with pytest.raises(wasmgym.BadSnapshotError):
            wasmgym.Snapshot.from_bytes(bad)
    # In an actor: the error crosses back as the same class (Ray's RayTaskError subclasses the cause).
    with pytest.raises(wasmgym.BadSnapshotError) as info:
        ray.get(actors[0].restore_bytes.remote(bytes(flipped)))
    assert isinstance(info.value, ray.exceptions.RayTaskError)
    # The untouched bytes restore fine in the same actor afterwards.
    assert ray.get(actors[0].restore_bytes.remote(data)) == ray.get(actors[0].state_hash_of.remote(ray.put(snap)))
    # A snapshot of another module is refused too.
    other = wasmgym.make("tic_tac_toe")
    other.reset(seed=1)
    with pytest.raises(wasmgym.BadSnapshotError):
        wasmgym.make(rs.ENV).restore(other.snapshot())


def test_restore_keeps_state_hash(root):
    env, snap = root
    fresh = wasmgym.make(rs.ENV)
    fresh.restore(snap)
    assert fresh.state_hash() == env.state_hash()
