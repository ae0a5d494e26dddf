"""Envs from Python threads: calls on one env take turns; envs in different threads run in parallel."""

import threading

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
