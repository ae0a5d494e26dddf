"""fork, snapshot, restore, state_hash, pickling and deepcopy: exact against replay from reset."""

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import wasmgym


def play(env, actions):
    out = []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append((np.asarray(obs).tobytes(), r, term, trunc))
        if term or trunc:
            break
    return out


def random_actions(env, n, seed):
    rng = np.random.default_rng(seed)
    branch = env.fork()
    actions = []
    for _ in range(n):
        legal = branch.legal_actions()
        if not legal:
            break
        a = legal[int(rng.integers(len(legal)))]
        actions.append(a)
        _, _, t, tr, _ = branch.step(a)
        if t or tr:
            break
    return actions


@pytest.mark.parametrize("name", ["connect_four", "cart_pole", "text_adventure", "game_of_24"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fork_snapshot_and_pickle_equal_replay_from_reset(name: str, seed: int) -> None:
    env = wasmgym.make(name)
    env.reset(seed=seed)
    prefix = random_actions(env, 5, seed)
    play(env, prefix)
    suffix = random_actions(env, 20, seed + 100)
    snap = env.snapshot()
    fork = env.fork()
    deep = copy.deepcopy(env)
    restored = wasmgym.make(name)
    restored.restore(pickle.loads(pickle.dumps(snap)))
    expected_hash = env.state_hash()
    assert fork.state_hash() == deep.state_hash() == restored.state_hash() == expected_hash

    replay = wasmgym.make(name)
    replay.reset(seed=seed)
    play(replay, prefix)
    assert replay.state_hash() == expected_hash  # same actions, bit-identical machine state
    reference = play(replay, suffix)
    for branch in (fork, deep, restored, env):
        assert play(branch, suffix) == reference
    env.restore(snap)
    assert env.state_hash() == expected_hash and play(env, suffix) == reference


def test_snapshot_round_trips_across_processes(tmp_path) -> None:
    env = wasmgym.make("connect_four")
    env.reset(seed=5)
    play(env, [3, 3, 2, 4])
    path = tmp_path / "snap.pkl"
    path.write_bytes(pickle.dumps(env.snapshot()))
    code = (
        "import pickle, sys, wasmgym; e = wasmgym.make('connect_four'); "
        "e.restore(pickle.loads(open(sys.argv[1], 'rb').read())); e.step(1); "
        "sys.stdout.write(e.state_hash().hex())"
    )
    child = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    env.step(1)
    assert child.stdout == env.state_hash().hex()


def test_corrupt_snapshot_bytes_are_refused_and_change_nothing() -> None:
    env = wasmgym.make("connect_four")
    env.reset(seed=0)
    data = bytearray(env.snapshot().to_bytes())
    before = env.state_hash()
    for i in (0, 9, len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x55
        with pytest.raises(wasmgym.BadSnapshotError) as e:
            wasmgym.Snapshot.from_bytes(bytes(bad))
        assert e.value.kind == "bad_snapshot"
    with pytest.raises(wasmgym.BadSnapshotError):
        wasmgym.Snapshot.from_bytes(bytes(data[:100]))
    other = wasmgym.make("tic_tac_toe")
    other.reset(seed=0)
    with pytest.raises(wasmgym.BadSnapshotError, match="module"):
        env.restore(other.snapshot())
    assert env.state_hash() == before


def test_snapshot_bytes_against_the_module_are_smaller_and_need_it_back() -> None:
    env = wasmgym.make("connect_four")
    env.reset(seed=3)
    play(env, [3, 3, 2, 4, 1])
    snap = env.snapshot()
    compact, plain = env.snapshot_to_bytes(snap), snap.to_bytes()
    assert len(compact) * 4 <= len(plain)
    other = wasmgym.make("connect_four")
    other.restore(other.snapshot_from_bytes(compact))
    assert other.state_hash() == env.state_hash()
    assert play(other, [5, 6]) == play(env, [5, 6])
    other.restore(other.snapshot_from_bytes(plain))  # the plain format reads too
    with pytest.raises(wasmgym.BadSnapshotError, match="snapshot_from_bytes"):
        wasmgym.Snapshot.from_bytes(compact)
    with pytest.raises(wasmgym.BadSnapshotError, match="another module"):
        wasmgym.make("tic_tac_toe").snapshot_from_bytes(compact)


def test_a_snapshot_key_signs_bytes_and_refuses_others(tmp_path, signed_across_processes) -> None:
    # Each process reads WASMGYM_SNAPSHOT_KEY when it makes its runtime.
    code = (
        "import os, sys, wasmgym\n"
        "e = wasmgym.make('connect_four'); e.reset(seed=2)\n"
        "for a in (3, 3, 2): e.step(a)\n"
        "path = sys.argv[1]\n"
        "if sys.argv[2] == 'write':\n"
        "    open(path, 'wb').write(e.snapshot_to_bytes(e.snapshot())); sys.stdout.write(e.state_hash().hex())\n"
        "else:\n"
        "    try:\n"
        "        e.restore(e.snapshot_from_bytes(open(path, 'rb').read())); sys.stdout.write(e.state_hash().hex())\n"
        "    except wasmgym.BadSnapshotError as err:\n"
        "        sys.stdout.write('refused: ' + str(err))\n"
    )
    path = tmp_path / "signed.bin"
    signed_across_processes(code, path)
    bad = subprocess.run(
        [sys.executable, "-c", code, str(path), "read"], capture_output=True, text=True,
        env={**os.environ, "WASMGYM_SNAPSHOT_KEY": "not hex"},
    )
    assert bad.returncode != 0 and "64 hex digits" in bad.stderr


def test_pickled_snapshots_restore_across_processes_with_a_snapshot_key(tmp_path, signed_across_processes) -> None:
    # With a key, pickling writes the snapshot signed and self-contained (format 5), so processes
    # with the key (Ray workers, say) restore it; others refuse it, and unsigned pickles do not restore.
    code = (
        "import pickle, sys, wasmgym\n"
        "e = wasmgym.make('connect_four'); e.reset(seed=2)\n"
        "for a in (3, 3, 2): e.step(a)\n"
        "path = sys.argv[1]\n"
        "if sys.argv[2] == 'write':\n"
        "    open(path, 'wb').write(pickle.dumps(e.snapshot())); sys.stdout.write(e.state_hash().hex())\n"
        "else:\n"
        "    e.reset(seed=9)\n"
        "    try:\n"
        "        e.restore(pickle.loads(open(path, 'rb').read())); sys.stdout.write(e.state_hash().hex())\n"
        "    except wasmgym.BadSnapshotError as err:\n"
        "        sys.stdout.write('refused: ' + str(err))\n"
    )
    path = tmp_path / "snapshot.pickle"
    run = signed_across_processes(code, path)
    written = run("", "write")
    assert run("", "read") == written
    assert "not signed" in run("ab" * 32, "read")


def test_snapshot_metadata() -> None:
    env = wasmgym.make("tic_tac_toe")
    env.reset(seed=0)
    env.step(0)
    snap = env.snapshot()
    assert snap.steps == 1 and snap.memory_bytes > 0 and len(snap.module_hash) == 64
