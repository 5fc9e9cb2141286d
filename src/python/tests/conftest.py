"""Shared fixtures: the source and build folders (tests write only under the build folder) and
the arm system-identification task with noise-free data recorded at the truth."""

import json
import os
import tempfile

import pytest

import dso

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("DSO_SOURCE_DIR",
                            os.path.normpath(os.path.join(HERE, "..", "..", "..")))


def build_dir():
    path = os.environ.get("DSO_BUILD_DIR")
    if not path:
        pytest.fail("DSO_BUILD_DIR is not set: the tests write only under the build folder "
                    "(run them through ctest -R python_binding)")
    return path


@pytest.fixture(scope="session")
def scratch():
    """A fresh folder under DSO_BUILD_DIR/test-output."""
    base = os.path.join(build_dir(), "test-output")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="python_binding_", dir=base)


@pytest.fixture(scope="session")
def truth():
    with open(os.path.join(SOURCE_DIR, "tasks", "truth", "arm_sysid.json")) as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def arm_task(scratch, truth):
    """Path of a copy of tasks/arm_sysid.json whose data (4 episodes of 500 samples, the last 2
    validation, control excitation 0.6) is recorded by Task.simulate at the true values."""
    with open(os.path.join(SOURCE_DIR, "tasks", "arm_sysid.json")) as fh:
        spec = json.load(fh)
    csv = os.path.join(scratch, "arm_sysid.csv")
    spec["model"] = os.path.join(SOURCE_DIR, "models", "arm2.xml")
    spec["data"]["files"] = csv
    path = os.path.join(scratch, "arm_sysid.json")
    with open(path, "w") as fh:
        json.dump(spec, fh, indent=1)
    with dso.Task(path, data=False) as task:
        task.simulate(csv, episodes=4, horizon=500, seed=5, excitation=0.6, validation=2,
                      values=truth)
    return path


@pytest.fixture
def design_task():
    return os.path.join(SOURCE_DIR, "tasks", "pendulum_design.json")
