"""Composite agent episodes from Python: forks replay exactly, snapshots pickle, tool calls,
host-callback users, pass^k and sequential suites."""

import copy
import json
import pickle

import pytest

import wasmgym
from wasmgym import agents


def scripted_like(messages):
    """A tiny agent for the support desk: looks the order up, then says goodbye."""
    for m in messages:
        if m.sender == "user" and "#W" in m.text:
            order = "#W" + m.text.split("#W", 1)[1][:4]
            return {"tool": "get_order", "args": {"order_id": order}}
    return "Thank you, goodbye."


def test_a_fork_mid_conversation_replays_exactly():
    desk = agents.Composite("support_desk")
    desk.reset(seed=3, options={"task": 2})
    actions = ["Hello! Which order is it about? Please give me the order id and your email.",
               {"tool": "find_user_by_email", "args": {"email": "nobody@example.com"}},
               "Could you confirm the order id?"]
    desk.step(actions[0])
    child = desk.fork()
    twin = copy.deepcopy(desk)
    assert child.state_hash() == desk.state_hash() == twin.state_hash()
    a = [desk.step(x) for x in actions[1:]]
    b = [child.step(x) for x in actions[1:]]
    assert a == b
    assert desk.state_hash() == child.state_hash()
    assert desk.transcript == child.transcript
    # The twin, left behind, is where the fork was taken.
    assert twin.turns == 1


def test_snapshots_pickle_and_restore_into_a_new_composite():
    desk = agents.Composite("support_desk")
    desk.reset(seed=1, options={"task": 4})
    desk.step("Hi, how can I help?")
    snap = pickle.loads(pickle.dumps(desk.snapshot()))
    after = desk.step("Could you give me your email?")
    other = agents.Composite("support_desk")
    other.restore(snap)
    assert other.step("Could you give me your email?") == after
    assert other.state_hash() == desk.state_hash()
    with pytest.raises(wasmgym.BadSnapshotError, match="checksum"):
        data = bytearray(snap.to_bytes())
        data[len(data) // 2] ^= 1
        agents.CompositeSnapshot.from_bytes(bytes(data))


def test_pickled_composite_snapshots_restore_across_processes_with_a_snapshot_key(tmp_path, signed_across_processes):
    # With WASMGYM_SNAPSHOT_KEY set, pickling signs the composite (and each part) with the key.
    code = (
        "import pickle, sys, wasmgym\n"
        "from wasmgym import agents\n"
        "desk = agents.Composite('support_desk'); desk.reset(seed=1, options={'task': 4})\n"
        "desk.step('Hi, how can I help?')\n"
        "if sys.argv[2] == 'write':\n"
        "    open(sys.argv[1], 'wb').write(pickle.dumps(desk.snapshot())); sys.stdout.write(desk.state_hash().hex())\n"
        "else:\n"
        "    other = agents.Composite('support_desk')\n"
        "    try:\n"
        "        other.restore(pickle.loads(open(sys.argv[1], 'rb').read())); sys.stdout.write(other.state_hash().hex())\n"
        "    except wasmgym.BadSnapshotError as err:\n"
        "        sys.stdout.write('refused: ' + str(err))\n"
    )
    signed_across_processes(code, tmp_path / "composite.pickle")


def test_invalid_tool_calls_are_observations():
    desk = agents.Composite("support_desk")
    desk.reset(seed=0, options={"task": 0})
    names = [t["name"] for t in desk.tools]
    assert "get_order" in names
    assert desk.function_specs[0]["type"] == "function"
    step = desk.step({"tool": "launch_rocket", "args": {}})
    assert step.messages[-1].sender == "host" and "unknown tool" in step.messages[-1].text
    step = desk.step({"tool": "get_order", "args": {"order_id": 3}})
    assert "must be a string" in step.messages[-1].text
    assert desk.running and desk.turns == 2


def test_a_python_user_callback_forks_with_the_composite():
    wiring = {
        "name": "desk_and_llm",
        "parts": [
            {"name": "env", "module": "support_desk", "hears": ["tool_calls"]},
            {"name": "user", "module": None, "hears": ["messages"]},
        ],
        "max_turns": 10,
    }
    seen = []

    def user(turn):
        seen.append(turn)
        heard = [m for m in turn["transcript"] if m["from"] == "agent" and m["to"] == "user"]
        if heard and heard[-1]["text"] == "boom":
            raise RuntimeError("the model is down")
        return f"I have heard {len(heard)} messages", len(heard) >= 3

    c = agents.Composite(json.dumps(wiring), user=user)
    opening = c.reset(seed=5, options={"task": 1})
    assert opening.messages[-1].text == "I have heard 0 messages"
    assert seen[0]["options"] == '{"task": 1}'
    c.step("one")
    fork = c.fork()
    assert c.step("two") == fork.step("two")
    assert c.step("three").terminated
    with pytest.raises(wasmgym.AgentError, match="model is down"):
        fork.step("boom")


def test_evaluate_reports_pass_k_by_hand_count():
    calls = {"n": 0}

    def make_agent():
        calls["n"] += 1
        fail = calls["n"] == 2  # task 0, second trial

        def act(messages):
            text = messages[-1].text
            a, b = [int(x) for x in text.split("=")[0].split("+")]
            return f"{a + b + (1 if fail else 0)}="

        return act

    wiring = {
        "name": "answer",
        "parts": [{"name": "env", "module": "answer_env", "hears": ["messages"]}],
        "checker": {"module": "answer_checker", "part": "env"},
        "max_turns": 4,
    }
    report = agents.evaluate(json.dumps(wiring), make_agent, tasks=2, k=3, seed=0)
    assert [[t["success"] for t in task] for task in report["tasks"]] == [[True, False, True], [True] * 3]
    assert report["pass_hat"][0] == pytest.approx(5 / 6)
    assert report["pass_k"] == pytest.approx(0.5)
    assert agents.pass_hat([(3, 2), (3, 3)], 3) == report["pass_hat"]


def test_scripted_eval_and_sequential_suite():
    report = agents.evaluate_scripted("support_desk", tasks=3, k=2, seed=0)
    assert len(report["pass_hat"]) == 2 and len(report["tasks"]) == 3
    assert 0.0 <= report["pass_k"] <= report["pass_hat"][0] <= 1.0
    suite = agents.evaluate_scripted("workshop", tasks=8, k=1, sequential=True)
    assert sum(suite["sequential"]) > sum(suite["iid"])
    with pytest.raises(ValueError, match="no built-in scripted agent"):
        agents.evaluate_scripted("text_adventure", tasks=1, k=1)


def test_breadth_first_search_runs_on_a_composite():
    wiring = {
        "name": "answer",
        "parts": [{"name": "env", "module": "answer_env", "hears": ["messages"]}],
        "checker": {"module": "answer_checker", "part": "env"},
        "max_turns": 4,
    }
    c = agents.Composite(json.dumps(wiring))
    question = c.reset(seed=7).messages[-1].text
    a, b = [int(x) for x in question.split("=")[0].split("+")]
    root = c.state_hash()
    result = wasmgym.search.bfs(c, depth=1, propose=lambda state: [f"{a + b + d}=" for d in (-1, 0, 1)])
    assert result["nodes"] == 3
    best = result["trajectories"][0]
    assert best["actions"] == [f"{a + b}="] and best["return"] == 1.0
    assert c.state_hash() == root
