"""The launcher's core plan: vLLM's cores, the other services' thread caps, the operator's say."""

from __future__ import annotations

from services.launcher.cores import GENERATION_NICE, plan_cores, with_nice

ALL = ("generation", "retrieval", "tasks")


def test_two_cores_give_generation_one_and_the_others_one_thread() -> None:
    plan = plan_cores([0, 1], ALL, {})
    assert plan.generation_cores == (0,)
    assert plan.env["generation"] == {"VLLM_CPU_OMP_THREADS_BIND": "0"}
    assert plan.env["tasks"] == {"BABEL_TASKS_EMBEDDING_THREADS": "1", "OMP_NUM_THREADS": "1"}
    assert plan.env["retrieval"] == {"BABEL_RETRIEVAL_THREADS": "1", "OMP_NUM_THREADS": "1"}


def test_sixteen_cores_keep_a_quarter_for_the_other_services() -> None:
    plan = plan_cores(list(range(16)), ALL, {})
    assert plan.generation_cores == tuple(range(12))
    assert plan.env["generation"]["VLLM_CPU_OMP_THREADS_BIND"] == ",".join(map(str, range(12)))
    assert plan.env["tasks"]["OMP_NUM_THREADS"] == "4"


def test_settings_in_the_environment_win() -> None:
    environ = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "BABEL_RETRIEVAL_THREADS": "8"}
    plan = plan_cores([0, 1, 2, 3], ALL, environ)
    assert "generation" not in plan.env
    assert plan.env["retrieval"] == {"OMP_NUM_THREADS": "1"}


def test_no_plan_without_something_to_share_with() -> None:
    assert not plan_cores([0, 1, 2, 3], ("generation",), {}).active
    assert not plan_cores([0, 1, 2, 3], ("tasks", "retrieval"), {}).active
    assert not plan_cores([0], ALL, {}).active


def test_generation_runs_behind_the_others() -> None:
    plan = plan_cores([0, 1], ALL, {})
    assert with_nice(["python", "-m", "x"], "generation", plan)[:3] == [
        "nice",
        "-n",
        str(GENERATION_NICE),
    ]
    assert with_nice(["python", "-m", "x"], "tasks", plan) == ["python", "-m", "x"]
