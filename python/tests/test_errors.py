"""One exception hierarchy mirroring the runtime's errors; hostile guests never crash Python."""

import os

import pytest

import wasmgym
import wasmgym.search
import wasmgym.vector

def wat_env(tmp_path, body: str) -> str:
    """A module that exports nothing an environment needs, or traps: written as WAT text."""
    path = tmp_path / "m.wat"
    path.write_text(body)
    return str(path)


def test_hierarchy() -> None:
    assert issubclass(wasmgym.OutOfFuelError, wasmgym.LimitError)
    assert issubclass(wasmgym.MemoryCapError, wasmgym.LimitError)
    assert issubclass(wasmgym.AbiMismatchError, wasmgym.ModuleError)
    for name in ("ModuleError", "LimitError", "TrapError", "IllegalActionError", "InvalidCallError",
                 "GuestError", "BadSnapshotError", "PoisonedError", "SearchError", "GradeError"):
        assert issubclass(getattr(wasmgym, name), wasmgym.WasmgymError)


def test_bad_modules_are_module_errors(tmp_path) -> None:
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"\0asm\x01\0\0\0garbage")
    with pytest.raises(wasmgym.ModuleError, match="invalid module") as e:
        wasmgym.make(str(garbage))
    assert e.value.kind == "invalid_module"
    with pytest.raises(wasmgym.AbiMismatchError, match="the environment has no version stamp") as e:
        wasmgym.make(wat_env(tmp_path, "(module (memory 1))"))
    assert e.value.kind == "abi_mismatch"
    with pytest.raises(wasmgym.ModuleError, match="cannot read"):
        wasmgym.make("no/such/env.wasm")
    with pytest.raises(ValueError, match="built-ins are"):
        wasmgym.make("no_such_env")


def test_limits_poison_and_restore_heals() -> None:
    env = wasmgym.make("connect_four", fuel_per_call=25_000)  # a reset takes about 23k
    env.reset(seed=0)
    snap = env.snapshot()
    with pytest.raises(wasmgym.OutOfFuelError) as e:
        wasmgym.search.mcts(env, simulations=50)  # a playout from the start uses more fuel than that
    assert e.value.poisons and e.value.kind == "out_of_fuel"
    env.restore(snap)
    env.step(3)


def test_chaos_guest_traps_are_typed(tmp_path) -> None:
    env = wasmgym.make("tic_tac_toe", illegal_action="raise")
    with pytest.raises(wasmgym.InvalidCallError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(wasmgym.IllegalActionError):
        env.step(99)
    with pytest.raises(TypeError, match="an action is an int"):
        env.step(1.5)
    with pytest.raises(ValueError, match="memory_mib"):
        wasmgym.make("tic_tac_toe", memory_mib=0)
    with pytest.raises(ValueError, match="deadline_s"):
        wasmgym.make("tic_tac_toe", deadline_s=float("nan"))



def test_a_rebuilt_env_file_is_loaded_again(tmp_path) -> None:
    path = tmp_path / "env.wasm"
    path.write_bytes(wasmgym._core.builtin_program("answer_env"))
    assert wasmgym.make(str(path)).wasm_spec["name"] == "answer"
    path.write_bytes(b"\0asm\x01\0\0\0garbage")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    with pytest.raises(wasmgym.ModuleError, match="invalid module"):
        wasmgym.make(str(path))


@pytest.mark.parametrize(
    "action, error, kind",
    [
        (1, wasmgym.OutOfFuelError, "out_of_fuel"),  # an infinite loop
        (2, wasmgym.MemoryLimitError, "memory_limit"),  # a memory bomb
        (3, wasmgym.LimitError, "stack_overflow"),  # unbounded recursion
        (4, wasmgym.LimitError, "output_limit"),  # a flood of output
        (5, wasmgym.TrapError, "trap"),  # a panic
        (6, wasmgym.TrapError, "exit"),  # process::exit
    ],
)
def test_a_misbehaving_guest_gets_a_typed_error_and_restore_heals_it(chaos_wasm, action, error, kind) -> None:
    env = wasmgym.make(chaos_wasm, fuel_per_call=100_000_000, memory_mib=32, illegal_action="raise")
    env.reset(seed=0)
    snap = env.snapshot()
    with pytest.raises(error) as e:
        env.step(action)
    assert e.value.kind == kind and e.value.poisons
    assert env.native.poisoned
    with pytest.raises(wasmgym.PoisonedError, match="restore a snapshot"):
        env.step(0)
    env.restore(snap)
    _, reward, *_ = env.step(0)
    assert reward == 1.0


def test_a_misbehaving_guest_in_a_vector_env_names_the_env(chaos_wasm) -> None:
    import numpy as np

    vec = wasmgym.vector.make(chaos_wasm, 3, threads=2, fuel_per_call=100_000_000)
    vec.reset(seed=0)
    with pytest.raises(wasmgym.OutOfFuelError, match="env 1 of the batch") as e:
        vec.step(np.array([0, 1, 0]))
    assert e.value.kind == "out_of_fuel"
