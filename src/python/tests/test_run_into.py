"""Task.run_into: the library's run driver (include/dso/run.h, dso_run_task) from Python: files,
events, summary, interrupt from the callback and resume, errors. Writes only under the build
folder (the session's scratch folder)."""

import csv
import fcntl
import json
import os

import numpy as np
import pytest

import dso

from conftest import SOURCE_DIR


@pytest.fixture(scope="session")
def chain_task(scratch):
    """The pendulum design task with a small batch (8 rollouts of 100 steps) and 4 iterations."""
    with open(os.path.join(SOURCE_DIR, "tasks", "pendulum_design.json")) as fh:
        spec = json.load(fh)
    spec["model"] = os.path.join(SOURCE_DIR, "models", "pendulum.xml")
    spec["rollout"].update({"horizon": 100, "rollouts": 8})
    spec["train"] = {"max_iter": 4}
    path = os.path.join(scratch, "chain.json")
    with open(path, "w") as fh:
        json.dump(spec, fh, indent=1)
    return path


def kinds(events):
    return [(e.kind, e.iteration) for e in events]


def expect_sequence(events, first, last):
    """START at first, ITERATION first+1 .. last, NOTE/WARNING events, RESULT at last."""
    seq = kinds(events)
    assert seq[0] == ("start", first)
    n = last - first
    assert seq[1:1 + n] == [("iteration", it) for it in range(first + 1, last + 1)]
    assert all(k in ("note", "warning") for k, _ in seq[1 + n:-1]), seq
    assert seq[-1] == ("result", last)


def progress_iterations(outdir):
    """The iter column of OUTDIR/progress.csv (fits record iteration 0, chains start at 1)."""
    with open(os.path.join(outdir, "progress.csv")) as fh:
        return [int(r["iter"]) for r in csv.DictReader(fh)]


def read_progress(outdir):
    with open(os.path.join(outdir, "progress.csv")) as fh:
        return list(csv.DictReader(fh))


# --- a fit: files, events, summary -------------------------------------------------------------

def test_fit_writes_files_events_and_summary(arm_task, scratch):
    task = dso.Task(arm_task)
    u0 = task.u
    outdir = os.path.join(scratch, "run_fit")
    events = []
    s = task.run_into(outdir, max_iter=3, on_event=events.append)
    assert isinstance(s, dso.RunSummary)
    assert (s.kind, s.stop, s.first_iteration, s.iterations, s.refused) == \
        ("fit", "max_iter", 0, 3, 0)
    assert not s.interrupted
    expect_sequence(events, 0, 3)
    assert all(e.task_kind == "fit" and e.max_iter == 3 for e in events)
    assert events[0].text.startswith("dso run %s: " % arm_task)
    assert events[-1].text.startswith("wrote %s/result.json" % outdir)
    it = [e for e in events if e.kind == "iteration"]
    assert "iter   3  J " in it[-1].text and it[-1].text.endswith("\n")
    assert set(it[0].parts) == {"sysid", "calib", "prior"}
    assert it[0].cost < events[0].cost and it[-1].cost < 1e-3 * events[0].cost
    assert all(np.isfinite(e.grad_norm) and e.steps > 0 for e in it)
    assert s.cost == it[-1].cost
    # the files, in the summary and on disk; no plots by default
    names = ["result.json", "progress.csv", "checkpoint.json", "model.xml", "trajectories.csv"]
    assert sorted(s.files) == sorted(os.path.join(outdir, n) for n in names)
    assert all(os.path.isfile(p) for p in s.files)
    assert not os.path.exists(os.path.join(outdir, "progress.gp"))
    rows = read_progress(outdir)
    assert [int(r["iter"]) for r in rows] == [0, 1, 2, 3]
    assert [float(r["cost"]) for r in rows[1:]] == pytest.approx([e.cost for e in it],
                                                                 rel=1e-12)
    with open(os.path.join(outdir, "result.json")) as fh:
        result = json.load(fh)
    assert "physics.upper_arm.mass" in json.dumps(result)
    # θ: natural values of the unconstrained ones, copied out of the library; the task's θ moved
    assert s.theta.shape == s.value.shape == (len(task.names),)
    np.testing.assert_allclose(s.value, task.natural(s.theta), rtol=1e-14)
    assert np.array_equal(task.u, s.theta) and not np.array_equal(task.u, u0)
    assert s.as_dict()["physics.upper_arm.mass"] == task["physics.upper_arm.mass"]
    # the same LM steps as Task.run (dso_task_run_step), to the bit
    other = dso.Task(arm_task)
    _, history = other.run(max_iter=3)
    assert history[-1] == s.cost and np.array_equal(other.u, s.theta)


def test_values_start_the_run(design_task, scratch):
    task = dso.Task(design_task)
    outdir = os.path.join(scratch, "run_values")
    s = task.run_into(outdir, max_iter=0, values={"physics.torque.gear[0]": 0.7,
                                                  "policy.k[0]": 0.25})
    assert s.iterations == 0 and s.stop == "max_iter"
    v = s.as_dict()
    assert v["physics.torque.gear[0]"] == pytest.approx(0.7, rel=1e-14)
    assert v["policy.k[0]"] == 0.25 and v["policy.K[0,0]"] == 0
    with open(os.path.join(outdir, "start_values.json")) as fh:
        assert json.load(fh) == {"physics.torque.gear[0]": 0.7, "policy.k[0]": 0.25}
    # a file of values: the result.json just written
    s2 = dso.Task(design_task).run_into(os.path.join(scratch, "run_values2"), max_iter=0,
                                        values=os.path.join(outdir, "result.json"))
    assert np.array_equal(s2.theta, s.theta)


# --- interrupt from the callback, resume: bitwise the θ of an uninterrupted run -----------------

@pytest.mark.parametrize("which", ["chain", "fit"])
def test_interrupt_and_resume_match_whole_run(which, chain_task, arm_task, scratch):
    path = chain_task if which == "chain" else arm_task
    n = 4
    whole = dso.Task(path).run_into(os.path.join(scratch, which + "_whole"), max_iter=n)
    assert whole.iterations == n and whole.stop in ("max_iter", "converged")

    outdir = os.path.join(scratch, which + "_part")
    events = []

    def stop_at_2(ev):
        events.append(ev)
        return ev.kind == "iteration" and ev.iteration == 2

    task = dso.Task(path)
    part = task.run_into(outdir, max_iter=n, on_event=stop_at_2)
    assert (part.stop, part.iterations) == ("interrupted", 2) and part.interrupted
    assert kinds(events) == [("start", 0), ("iteration", 1), ("iteration", 2),
                             ("interrupted", 2)]
    assert events[-1].text == "interrupted after iteration 2\n"
    assert not os.path.exists(os.path.join(outdir, "result.json"))
    assert os.path.isfile(os.path.join(outdir, "checkpoint.json"))
    row0 = 0 if which == "fit" else 1
    assert progress_iterations(outdir) == list(range(row0, 3))
    assert sorted(part.files) == [os.path.join(outdir, "checkpoint.json"),
                                  os.path.join(outdir, "progress.csv")]
    assert np.array_equal(task.u, part.theta)

    events.clear()
    rest = dso.Task(path).run_into(outdir, max_iter=n, resume=True, on_event=events.append)
    expect_sequence(events, 2, n)
    assert rest.first_iteration == 2 and rest.iterations == n
    assert np.array_equal(rest.theta, whole.theta)  # bitwise
    assert np.array_equal(rest.value, whole.value)
    assert rest.cost == whole.cost
    assert progress_iterations(outdir) == list(range(row0, n + 1))


def test_exceptions_in_the_callback_stop_the_run_and_propagate(chain_task, scratch):
    outdir = os.path.join(scratch, "chain_raise")
    seen = []

    def ctrl_c_at_2(ev):
        seen.append(ev.kind)
        if ev.kind == "iteration" and ev.iteration == 2:
            raise KeyboardInterrupt  # what Ctrl-C during a run looks like
    task = dso.Task(chain_task)
    with pytest.raises(KeyboardInterrupt) as info:
        task.run_into(outdir, on_event=ctrl_c_at_2)
    # the library saw no exception: it stopped after iteration 2, resumable, and the callback
    # was not called again after the exception
    assert seen == ["start", "iteration", "iteration"]
    s = info.value.dso_summary
    assert (s.stop, s.iterations) == ("interrupted", 2)
    assert np.array_equal(task.u, s.theta)
    assert progress_iterations(outdir) == [1, 2]

    # any exception: here a second run into the same (locked) folder from inside the callback
    def nested(ev):
        if ev.kind == "iteration":
            dso.Task(chain_task).run_into(outdir, resume=True)
    with pytest.raises(dso.Error, match="in use by another dso run") as info:
        dso.Task(chain_task).run_into(outdir, resume=True, on_event=nested)
    assert info.value.code == 2
    assert (info.value.dso_summary.stop, info.value.dso_summary.iterations) == ("interrupted", 3)
    # and the folder still resumes to the uninterrupted θ
    rest = dso.Task(chain_task).run_into(outdir, resume=True)
    whole = dso.Task(chain_task).run_into(os.path.join(scratch, "chain_raise_whole"))
    assert rest.iterations == 4 and np.array_equal(rest.theta, whole.theta)


# --- errors --------------------------------------------------------------------------------------

def test_locked_folder_raises(chain_task, scratch):
    outdir = os.path.join(scratch, "locked")
    os.makedirs(outdir)
    task = dso.Task(chain_task)
    u0 = task.u
    with open(os.path.join(outdir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
        with pytest.raises(dso.Error, match="in use by another dso run") as info:
            task.run_into(outdir, max_iter=1)
        assert info.value.code == 2 and info.value.status == "i/o error"
        assert info.value.summary.stop == "failed"
        assert not os.path.exists(os.path.join(outdir, "checkpoint.json"))
        assert np.array_equal(task.u, u0)  # a failed run leaves θ
    assert task.run_into(outdir, max_iter=1).iterations == 1  # released


def test_bad_arguments_raise_with_a_message(chain_task, arm_task, scratch):
    task = dso.Task(chain_task)
    afile = os.path.join(scratch, "a_file")
    with open(afile, "w") as fh:
        fh.write("x")
    with pytest.raises(dso.Error, match="exists and is not a folder") as info:
        task.run_into(afile, max_iter=1)
    assert info.value.code == 2
    with pytest.raises(dso.Error, match="outdir is None"):
        task.run_into(None)
    with pytest.raises(dso.Error, match="outdir is empty"):
        task.run_into("")
    with pytest.raises(dso.Error, match="expected a path"):
        task.run_into(3.5)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(dso.Error, match="max_iter") as info:
            task.run_into(os.path.join(scratch, "bad"), max_iter=bad)
        assert info.value.code == 1
    with pytest.raises(dso.Error, match="does not exist") as info:
        task.run_into(os.path.join(scratch, "no_checkpoint"), max_iter=1, resume=True)
    assert info.value.code == 1
    truth = os.path.join(SOURCE_DIR, "tasks", "truth", "arm_sysid.json")
    with pytest.raises(dso.Error, match="^my task: truth values apply to fits to recorded"):
        task.run_into(os.path.join(scratch, "bad"), max_iter=1, truth=truth, name="my task")
    with pytest.raises(dso.Error, match="physics.no_such_body.mass"):
        task.run_into(os.path.join(scratch, "bad"), values={"physics.no_such_body.mass": 1})
    with pytest.raises(dso.Error, match="expected {name: number}"):
        task.run_into(os.path.join(scratch, "bad"), values={"policy.k[0]": "x"})
    # a checkpoint of another task
    dso.Task(arm_task).run_into(os.path.join(scratch, "arm_ckpt"), max_iter=1)
    with pytest.raises(dso.Error) as info:
        task.run_into(os.path.join(scratch, "arm_ckpt"), max_iter=2, resume=True)
    assert info.value.code == 1 and info.value.message
    task.close()
    with pytest.raises(dso.Error, match="Task is closed"):
        task.run_into(os.path.join(scratch, "bad"))


def test_stop_names_match_the_library():
    from dso import run
    names = [dso._lib.lib.dso_run_stop_name(k).decode() for k in range(len(run.STOPS))]
    assert names == list(run.STOPS)


def test_estimator_task(scratch):
    """An estimator task (data recorded from its own chain): θ extended by the corrector."""
    with open(os.path.join(SOURCE_DIR, "tasks", "pendulum_estim.json")) as fh:
        spec = json.load(fh)
    spec["model"] = os.path.join(SOURCE_DIR, "models", "pendulum_noisy.xml")
    spec["data"]["files"] = os.path.join(scratch, "estim.csv")
    path = os.path.join(scratch, "estim.json")
    with open(path, "w") as fh:
        json.dump(spec, fh, indent=1)
    with dso.Task(path, data=False) as task:
        task.simulate(spec["data"]["files"], episodes=6, horizon=150, seed=3, validation=2)
    task = dso.Task(path)
    events = []
    s = task.run_into(os.path.join(scratch, "estim"), max_iter=2, on_event=events.append)
    expect_sequence(events, 0, 2)
    assert s.kind == "estimator" and s.iterations == 2
    assert s.theta.size > len(task.names)  # the corrector's weights follow the task's entries
    assert list(s.as_dict()) == task.names
    assert np.array_equal(task.u, s.theta[:len(task.names)])
    assert os.path.isfile(os.path.join(scratch, "estim", "result.json"))
    assert any("corrector" in e.text for e in events)


def test_structures_mirror_the_c_layout():
    """Sizes and offsets of include/dso/run.h's structures on LP64 (as gcc lays them out)."""
    import ctypes
    from dso import run
    if ctypes.sizeof(ctypes.c_void_p) != 8 or ctypes.sizeof(ctypes.c_long) != 8:
        pytest.skip("offsets below are LP64's")
    assert ctypes.sizeof(run._RunOptions) == 48 and run._RunOptions.interrupt.offset == 40
    assert ctypes.sizeof(run._RunEvent) == 136
    offsets = {"cost": 16, "term": 24, "part": 48, "grad_norm": 72, "lambda_": 80, "steps": 88,
               "done": 96, "steps_per_s": 104, "eta": 112, "refused_in_row": 120,
               "refused": 124, "text": 128}
    assert {k: getattr(run._RunEvent, k).offset for k in offsets} == offsets
    assert ctypes.sizeof(run._RunSummary) == 64
    offsets = {"cost": 16, "refused": 24, "ntheta": 28, "theta": 32, "value": 40, "nfile": 48,
               "file": 56}
    assert {k: getattr(run._RunSummary, k).offset for k in offsets} == offsets
