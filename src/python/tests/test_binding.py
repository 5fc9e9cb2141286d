"""Tests of the dso Python package (ctypes over include/dso/task.h)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dso

from conftest import SOURCE_DIR


# --- θ by name ---------------------------------------------------------------------------------

def test_names_values_round_trip(design_task):
    task = dso.Task(design_task)
    assert task.kind == "chain"
    assert task.names == ["policy.K[0,0]", "policy.K[0,1]", "policy.k[0]",
                          "physics.torque.gear[0]", "physics.arm.com[2]",
                          "action_noise.torque.std"]
    assert task["physics.torque.gear[0]"] == pytest.approx(0.5, rel=1e-15)
    # log, bounded and identity transforms: natural -> unconstrained -> natural
    v = np.array([0.3, -0.2, 0.1, 0.8, -0.07, 0.2])
    task.values = v
    np.testing.assert_allclose(task.values, v, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(task.natural(task.unconstrained(v)), v, rtol=1e-13, atol=1e-15)
    assert task.u[3] == pytest.approx(np.log(0.8), rel=1e-15)  # log transform
    task["physics.arm.com[2]"] = -0.12
    assert task["physics.arm.com[2]"] == pytest.approx(-0.12, rel=1e-13)
    assert task["physics.torque.gear[0]"] == pytest.approx(0.8, rel=1e-13)  # others unchanged
    assert task.as_dict()["policy.K[0,1]"] == pytest.approx(-0.2, rel=1e-15)
    e = task.entry("physics.arm.com[2]")
    assert (e["block"], e["transform"], e["fixed"]) == ("physics", "bounded", False)
    assert (e["lower"], e["upper"]) == (-0.15, -0.05)
    assert task.entry("action_noise.torque.std")["fixed"] is True
    task.reset()
    assert task["physics.torque.gear[0]"] == pytest.approx(0.5, rel=1e-15)
    assert task.size("nq") == 1 and task.size("nu") == 1 and task.size("ntheta") == 6


def test_unknown_name_and_bad_values_raise(design_task):
    task = dso.Task(design_task)
    with pytest.raises(dso.Error) as info:
        task["physics.no_such_body.mass"] = 0.5
    assert "physics.no_such_body.mass" in str(info.value)
    assert info.value.code == 1 and info.value.status == "bad input"
    with pytest.raises(dso.Error, match="physics.no_such_body.mass"):
        task["physics.no_such_body.mass"]
    before = task.values
    with pytest.raises(dso.Error, match=r"physics\.torque\.gear\[0\].*bounds"):
        task["physics.torque.gear[0]"] = 2.0  # outside [0.25, 1]
    np.testing.assert_array_equal(task.values, before)  # all or nothing
    with pytest.raises(dso.Error, match="expected 6 values"):
        task.values = [1.0, 2.0]
    with pytest.raises(dso.Error, match=r"u\[2\].*finite"):
        task.u = [0, 0, np.nan, 0, 0, 0]
    with pytest.raises(dso.Error, match="unknown size"):
        task.size("nbody")


def test_load_errors_and_closed_handles(scratch):
    with pytest.raises(dso.Error) as info:
        dso.Task(os.path.join(scratch, "missing.json"))
    assert "missing.json" in str(info.value) and info.value.code == 2  # i/o
    bad = os.path.join(scratch, "bad.json")
    with open(bad, "w") as fh:
        fh.write('{"model": "%s", "thetta": []}' %
                 os.path.join(SOURCE_DIR, "models", "arm2.xml"))
    with pytest.raises(dso.Error, match="thetta") as info:
        dso.Task(bad)
    assert info.value.code == 1
    with dso.Task(os.path.join(SOURCE_DIR, "tasks", "pendulum_design.json")) as task:
        pass
    with pytest.raises(dso.Error, match="closed"):
        task.kind
    task.close()  # idempotent
    # closing a task first closes the fits and chain costs that borrow from it
    task = dso.Task(os.path.join(SOURCE_DIR, "tasks", "pendulum_design.json"))
    cc = task.chain_cost(rollouts=2, horizon=5)
    assert cc(task.u) >= 0
    task.close()
    with pytest.raises(dso.Error, match="ChainCost is closed"):
        cc(np.zeros(6))


# --- fits ------------------------------------------------------------------------------------

def test_simulated_data_and_residual_at_truth(arm_task, truth):
    task = dso.Task(arm_task)
    assert task.kind == "fit" and task.size("nepisode") == 4
    data = dso.read_csv(task.path.replace(".json", ".csv"))
    assert data["time"].size == 4 * 500
    assert np.unique(data["episode"]).size == 4 and data["validation"].sum() == 2 * 500
    assert np.abs(data["ctrl.shoulder_torque"]).max() > 0.3  # the excitation
    with task.fit() as fit:
        assert fit.fitted_names == task.names  # every entry is a free physics entry
        # 2 training episodes x 499 steps x (2 qpos + 2 qvel) + 2 x 500 samples x 7 sensor
        # values (calibration residuals of the recorded sensors; the task has no prior)
        assert fit.nresidual == 2 * 499 * 4 + 2 * 500 * 7
        task.values = [truth[n] for n in task.names]
        r = fit.residual(task.u)
        # noise-free data replayed at the truth: zero to round-off (scale 0.01 rad)
        assert np.abs(r).max() < 1e-9
        # 30% off: large, and 0.5 |r|^2 is the library's fit cost (the binding's residual
        # follows fit.h's layout)
        task.reset()
        r0 = fit.residual(task.u)
        cost, parts = fit.cost(task.u, parts=True)
        assert cost > 1e3
        assert 0.5 * r0 @ r0 == pytest.approx(cost, rel=1e-12)
        assert parts["sysid"] == pytest.approx(0.5 * r0[:3992] @ r0[:3992], rel=1e-12)
        assert parts["prior"] == 0


def test_jacobian_against_finite_differences(arm_task):
    task = dso.Task(arm_task)
    with task.fit() as fit:
        u = task.u
        J = fit.jacobian(u)
        assert J.shape == (fit.nresidual, len(task.names)) and np.all(np.isfinite(J))
        assert np.abs(J[:3992]).max() > 1  # the windows depend on θ
        # directional derivatives along random directions, by central differences with a
        # different step from the Jacobian's own (the fit's forward differences, fit.jacobian's
        # default: first order, about 2e-5 here)
        rng = np.random.default_rng(3)
        for _ in range(2):
            d = rng.standard_normal(u.size)
            h = 1e-5
            fd = (fit.residual(u + h * d) - fit.residual(u - h * d)) / (2 * h)
            rel = np.linalg.norm(fd - J @ d) / np.linalg.norm(J @ d)
            assert rel < 1e-4, rel
        # one column on its own
        i = task.index("physics.elbow.damping")
        h = 1e-6 * (1 + abs(u[i]))
        e = np.zeros(u.size)
        e[i] = h
        col = (fit.residual(u + e) - fit.residual(u - e)) / (2 * h)
        assert np.linalg.norm(col - J[:, i]) <= 1e-4 * np.linalg.norm(J[:, i])


def test_scipy_least_squares_example_recovers_truth(arm_task, truth, capsys):
    pytest.importorskip("scipy")
    path = os.path.join(SOURCE_DIR, "src", "python", "examples", "sysid_scipy.py")
    spec = importlib.util.spec_from_file_location("sysid_scipy", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    truth_path = os.path.join(SOURCE_DIR, "tasks", "truth", "arm_sysid.json")
    task, result = example.main([arm_task, "--truth", truth_path])
    assert result.success
    out = capsys.readouterr().out
    assert "physics.elbow_torque.gear[0]" in out and "largest relative error" in out
    init = dso.Task(arm_task)
    for name, value in truth.items():
        # started 30% off (the shoulder force at 0 against 0.2 N m)
        assert abs(init[name] - value) >= 0.29 * abs(value)
        assert task[name] == pytest.approx(value, rel=1e-6), name


def test_readme_python_example_recovers_truth(arm_task, truth, capsys):
    """The README's ```python block, run on the arm task with recorded data."""
    pytest.importorskip("scipy")
    with open(os.path.join(SOURCE_DIR, "README.md")) as fh:
        readme = fh.read()
    start = readme.index("```python\n") + len("```python\n")
    code = readme[start:readme.index("```", start)]
    assert '"tasks/arm_sysid.json"' in code
    namespace = {}
    exec(compile(code.replace('"tasks/arm_sysid.json"', repr(arm_task)), "README.md", "exec"),
         namespace)
    task = namespace["task"]
    assert namespace["result"].success
    assert "physics.upper_arm.mass" in capsys.readouterr().out
    for name, value in truth.items():
        assert task[name] == pytest.approx(value, rel=1e-6), name


def test_run_fit_reduces_cost_and_moves_to_truth(arm_task, truth):
    task = dso.Task(arm_task)
    with task.fit() as fit:
        c0 = fit.cost(task.u)
    seen = []
    values, history = task.run(max_iter=4, callback=lambda k, c, u: seen.append((k, c)))
    assert len(history) == 4 and [k for k, _ in seen] == [0, 1, 2, 3]
    assert history[0] < c0 and history[-1] < 1e-3 * c0
    assert all(b <= a for a, b in zip(history, history[1:]))  # LM accepts only decreases
    with task.fit() as fit:
        assert fit.cost(task.u) == pytest.approx(history[-1], rel=1e-12)
    assert values["physics.upper_arm.mass"] == pytest.approx(truth["physics.upper_arm.mass"],
                                                             rel=1e-2)
    # Fit.step is the same LM step
    other = dso.Task(arm_task)
    with other.fit() as fit:
        cost, done = fit.step()
        assert cost == pytest.approx(history[0], rel=1e-12) and not done
        _, se = fit.covariance()
        assert se.shape == (10,) and np.all(se > 0)


def test_fit_needs_data(design_task):
    with pytest.raises(dso.Error, match="data"):
        dso.Task(design_task).fit()


# --- chain objective ---------------------------------------------------------------------------

def test_chain_gradient_against_finite_differences(design_task):
    task = dso.Task(design_task)
    u = task.u
    u[:3] = [0.3, -0.2, 0.05]  # a policy that is not zero
    with task.chain_cost(rollouts=8, seed=11, horizon=100) as cc:
        r = cc.evaluate(u)
        assert r["diverged"] == 0 and r["J"] > 0 and r["J_se"] > 0
        g = r["grad"]
        assert np.all(np.isfinite(g)) and np.all(r["grad_se"] > 0)
        # common random numbers: the same batch key gives bitwise the same J
        assert cc(u) == r["J"]
        assert cc(u, iteration=1) != r["J"]
        # central differences of J under common random numbers
        h = 1e-5
        fd = np.array([(cc(u + h * e) - cc(u - h * e)) / (2 * h) for e in np.eye(u.size)])
        scale = np.abs(fd).max()
        rel = np.abs(g - fd) / np.maximum(np.abs(fd), 1e-2 * scale)
        assert rel.max() < 1e-4, rel
    J, grad = task.cost_and_gradient(u, rollouts=8, seed=11, horizon=100)
    assert J == r["J"] and np.array_equal(grad, g)
    # the prior of the two design entries, and its gradient
    cost, pg = task.prior(u)
    assert cost == pytest.approx(0.5 * ((0.5 - 0.5) / 0.15) ** 2 +
                                 0.5 * ((-0.099 + 0.099) / 0.02) ** 2, abs=1e-12)
    assert np.all(pg[:3] == 0)


def test_seed_none_is_the_tasks_and_zero_is_a_seed(design_task):
    task = dso.Task(design_task)
    with open(design_task, encoding="utf-8") as fh:
        own = json.load(fh)["rollout"]["seed"]
    assert own != 0
    J = {s: task.cost_and_gradient(rollouts=4, seed=s, horizon=40)[0] for s in (None, own, 0)}
    assert J[None] == J[own] and J[0] != J[own]
    for bad in (-1, 2**64 - 1, 1.5, "3", True):
        with pytest.raises(dso.Error, match="seed"):
            task.chain_cost(seed=bad)


def test_run_chain_task(design_task):
    task = dso.Task(design_task)
    u0 = task.u
    values, history = task.run(max_iter=2)
    assert len(history) == 2 and all(np.isfinite(history))
    assert not np.array_equal(task.u, u0)
    assert task.u[5] == u0[5]  # the fixed entry stays
    assert values["action_noise.torque.std"] == pytest.approx(0.05, rel=1e-15)


# --- installation ------------------------------------------------------------------------------

def test_installed_package_finds_its_library(scratch):
    cmake = os.environ.get("DSO_CMAKE")
    build = os.environ.get("DSO_BUILD_DIR")
    pyrel = os.environ.get("DSO_PYTHON_INSTALL_REL")
    if not cmake or not pyrel:
        pytest.skip("DSO_CMAKE / DSO_PYTHON_INSTALL_REL not set (run through ctest)")
    prefix = os.path.join(scratch, "prefix")
    subprocess.run([cmake, "--install", build, "--prefix", prefix], check=True,
                   stdout=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if k not in ("DSO_LIBRARY", "PYTHONPATH")}
    env["PYTHONPATH"] = os.path.join(prefix, pyrel)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    code = ("import dso, os; print(dso.version()); "
            "print(os.path.realpath(dso.lib._name))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=scratch,
                         capture_output=True, text=True).stdout.split("\n")
    assert out[0] == dso.version()
    assert out[1].startswith(os.path.realpath(prefix))
