"""Envs from Python threads: calls on one env take turns; envs in different threads run in parallel."""

import threading

import pytest

import wasmgym


def test_one_env_shared_by_threads_stays_consistent() -> None:
    env = wasmgym.make("cart_pole")
    env.reset(seed=0)
    snap = env.snapshot()
    errors = []

    def worker(k: int) -> None:
        try:
            for _ in range(200):
                child = env.native.fork()
                child.step(k % 2)
                env.native.state_hash()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    fresh = wasmgym.make("cart_pole")
    fresh.restore(snap)
    assert fresh.state_hash() == env.state_hash()  # forks never touched the parent


def test_envs_in_threads_give_the_single_thread_results() -> None:
    def episode(seed: int) -> bytes:
        env = wasmgym.make("connect_four")
        env.reset(seed=seed)
        env.native.rollout(seed, 100)
        return env.state_hash()

    expected = [episode(s) for s in range(8)]
    got = [None] * 8

    def run(s: int) -> None:
        got[s] = episode(s)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_a_deadline_fires_in_a_process_forked_after_the_env_was_made(chaos_wasm) -> None:
    """`os.fork` copies the runtime but not its epoch thread; the first call in the child starts it."""
    import os
    import signal
    import time
    import warnings

    env = wasmgym.make(chaos_wasm, fuel_per_call=0, deadline_s=0.2, illegal_action="raise")
    env.reset(seed=0)
    env.step(0)  # the parent's epoch thread is running
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a process with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 3
        try:
            env.step(1)  # an infinite loop with no fuel limit: only the deadline can end it
        except wasmgym.DeadlineError:
            status = 0
        except BaseException:
            status = 2
        os._exit(status)
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("the forked child's infinite loop ran on: no deadline fired there")
    assert os.waitstatus_to_exitcode(status) == 0
    # And in the parent, as before.
    with pytest.raises(wasmgym.DeadlineError):
        env.step(1)
