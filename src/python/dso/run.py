"""The library's run driver (include/dso/run.h): ``dso run`` as one call into an output folder.

The ctypes structures below mirror dsoRunOptions, dsoRunEvent and dsoRunSummary field by field
(enums and sig_atomic_t are C ints on the platforms libdso supports). ``Task.run_into`` is the
public entry point; this module holds the structures, the event and summary objects and the call.
"""

import ctypes
import json
import os
from dataclasses import dataclass, field

import numpy as np

from . import _lib
from ._lib import Error

# dsoRunEventKind, in order
EVENT_KINDS = ("start", "iteration", "refused", "note", "warning", "interrupted", "result")
# dsoRunStop, in order (the names of dso_run_stop_name)
STOPS = ("none", "max_iter", "converged", "stalled_at_bound", "no_decrease", "interrupted",
         "refused", "failed")
MAX_REFUSED = 5  # DSO_RUN_MAX_REFUSED

_TASK_KINDS = {_lib.KIND_NONE: "none", _lib.KIND_FIT: "fit", _lib.KIND_CHAIN: "chain",
               _lib.KIND_ESTIMATOR: "estimator"}


class _RunOptions(ctypes.Structure):
    # typedef struct dsoRunOptions_ { ... } dsoRunOptions
    _fields_ = [("resume", ctypes.c_int),
                ("max_iter", ctypes.c_int),
                ("plots", ctypes.c_int),
                ("name", ctypes.c_char_p),
                ("values", ctypes.c_char_p),
                ("truth", ctypes.c_char_p),
                ("interrupt", ctypes.POINTER(ctypes.c_int))]  # volatile sig_atomic_t*


class _RunEvent(ctypes.Structure):
    # typedef struct dsoRunEvent_ { ... } dsoRunEvent
    _fields_ = [("kind", ctypes.c_int),            # dsoRunEventKind
                ("task_kind", ctypes.c_int),
                ("iteration", ctypes.c_int),
                ("max_iter", ctypes.c_int),
                ("cost", ctypes.c_double),
                ("term", ctypes.c_double * 3),
                ("part", ctypes.c_char_p * 3),
                ("grad_norm", ctypes.c_double),
                ("lambda_", ctypes.c_double),      # lambda
                ("steps", ctypes.c_long),
                ("done", ctypes.c_int),
                ("steps_per_s", ctypes.c_double),
                ("eta", ctypes.c_double),
                ("refused_in_row", ctypes.c_int),
                ("refused", ctypes.c_int),
                ("text", ctypes.c_char_p)]


class _RunSummary(ctypes.Structure):
    # typedef struct dsoRunSummary_ { ... } dsoRunSummary
    _fields_ = [("task_kind", ctypes.c_int),
                ("stop", ctypes.c_int),                # dsoRunStop
                ("first_iteration", ctypes.c_int),
                ("iterations", ctypes.c_int),
                ("cost", ctypes.c_double),
                ("refused", ctypes.c_int),
                ("ntheta", ctypes.c_int),
                ("theta", ctypes.POINTER(ctypes.c_double)),
                ("value", ctypes.POINTER(ctypes.c_double)),
                ("nfile", ctypes.c_int),
                ("file", ctypes.POINTER(ctypes.c_char_p))]


# void (*dsoRunProgressFn)(const dsoRunEvent* ev, void* user)
_ProgressFn = ctypes.CFUNCTYPE(None, ctypes.POINTER(_RunEvent), ctypes.c_void_p)

_lib.declare({
    "dso_run_options_default": (None, [ctypes.POINTER(_RunOptions)]),
    "dso_run_stop_name": (ctypes.c_char_p, [ctypes.c_int]),
    "dso_run_summary_clear": (None, [ctypes.POINTER(_RunSummary)]),
    "dso_run_task": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p,
                                    ctypes.POINTER(_RunOptions), _ProgressFn, ctypes.c_void_p,
                                    ctypes.POINTER(_RunSummary), _lib.ErrorPointer]),
})


def _text(b):
    return None if b is None else b.decode("utf-8", "replace")


@dataclass(frozen=True)
class RunEvent:
    """One progress event of a run (a copy of dsoRunEvent, valid after the callback).

    ``kind`` is one of "start", "iteration", "refused", "note", "warning", "interrupted",
    "result"; ``text`` is what ``dso run`` prints for it (lines ending in a newline); ``parts``
    maps the cost parts' names ("sysid", "calib", "prior", ...) to their values (NaN: not
    available).
    """

    kind: str
    task_kind: str
    iteration: int
    max_iter: int
    cost: float
    parts: dict
    grad_norm: float
    lambda_: float
    steps: int
    done: bool
    steps_per_s: float
    eta: float
    refused_in_row: int
    refused: int
    text: str

    @classmethod
    def _from_c(cls, ev):
        parts = {}
        for k in range(3):
            if ev.part[k] is not None:
                parts[_text(ev.part[k])] = float(ev.term[k])
        kind = EVENT_KINDS[ev.kind] if 0 <= ev.kind < len(EVENT_KINDS) else "unknown"
        return cls(kind=kind, task_kind=_TASK_KINDS.get(ev.task_kind, "unknown"),
                   iteration=ev.iteration, max_iter=ev.max_iter, cost=ev.cost, parts=parts,
                   grad_norm=ev.grad_norm, lambda_=ev.lambda_, steps=ev.steps,
                   done=bool(ev.done), steps_per_s=ev.steps_per_s, eta=ev.eta,
                   refused_in_row=ev.refused_in_row, refused=ev.refused,
                   text=_text(ev.text) or "")


@dataclass
class RunSummary:
    """What a run did (a copy of dsoRunSummary).

    ``stop`` is why it ended ("max_iter", "converged", "stalled_at_bound", "no_decrease",
    "interrupted", "refused", "failed", "none"); ``iterations`` the last recorded iteration
    (resumed ones included), ``first_iteration`` the one it started from; ``theta`` the final
    θ in unconstrained coordinates and ``value`` the same as natural values (numpy vectors;
    estimators extend the task's θ by the corrector's entries, so they may be longer than
    ``task.names``); ``files`` the paths written in the output folder.
    """

    kind: str
    stop: str
    first_iteration: int
    iterations: int
    cost: float
    refused: int
    theta: np.ndarray
    value: np.ndarray
    files: list
    names: list = field(default_factory=list)

    @property
    def interrupted(self):
        """True when the run stopped on the interrupt flag (resume with ``resume=True``)."""
        return self.stop == "interrupted"

    def as_dict(self):
        """Final natural values by name of the task's θ entries (the first ``len(names)``)."""
        return dict(zip(self.names, (float(x) for x in self.value)))

    @classmethod
    def _from_c(cls, s, names):
        n = max(int(s.ntheta), 0)
        theta = np.array(s.theta[:n], dtype=np.float64) if s.theta and n else np.zeros(0)
        value = np.array(s.value[:n], dtype=np.float64) if s.value and n else np.zeros(0)
        files = [os.fsdecode(s.file[k]) for k in range(s.nfile)] if s.file else []
        stop = _text(_lib.lib.dso_run_stop_name(s.stop)) or "unknown"
        return cls(kind=_TASK_KINDS.get(s.task_kind, "unknown"), stop=stop,
                   first_iteration=s.first_iteration, iterations=s.iterations, cost=s.cost,
                   refused=s.refused, theta=theta, value=value, files=files,
                   names=list(names[:n]))


def _path_arg(p, what):
    if p is None:
        return None
    try:
        b = os.fsencode(p)
    except TypeError:
        raise Error("run: %s is %r (expected a path)" % (what, p), _lib.ERR_INPUT) from None
    return b


def _write_values(outdir, values):
    """Writes {name: value} to OUTDIR/start_values.json (atomically) and returns its path."""
    try:
        mapping = {str(k): float(v) for k, v in values.items()}
    except (TypeError, ValueError) as exc:
        raise Error("run: values: expected {name: number}: %s" % exc, _lib.ERR_INPUT) from None
    path = os.path.join(os.fsdecode(outdir), "start_values.json")
    tmp = path + ".tmp%d" % os.getpid()
    try:
        os.makedirs(os.fsdecode(outdir), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(mapping, fh, indent=1)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise Error("run: %s: cannot write the starting values: %s" %
                    (path, exc.strerror or exc), _lib.ERR_IO) from None
    return path


def run_task(task, outdir, max_iter=None, resume=False, plots=False, values=None, truth=None,
             name=None, on_event=None):
    """dso_run_task on ``task`` (a dso.Task) into the folder outdir; see ``Task.run_into``."""
    if outdir is None:
        raise Error("run: outdir is None (expected a folder)", _lib.ERR_INPUT)
    out = _path_arg(outdir, "outdir")
    if not out:
        raise Error("run: outdir is empty (expected a folder)", _lib.ERR_INPUT)
    o = _RunOptions()
    _lib.lib.dso_run_options_default(ctypes.byref(o))
    o.resume = 1 if resume else 0
    if max_iter is not None:
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) \
                or max_iter < 0:
            raise Error("run: max_iter is %r (expected an integer >= 0, or None for the "
                        "task's)" % (max_iter,), _lib.ERR_INPUT)
        o.max_iter = int(max_iter)
    o.plots = 1 if plots else 0
    o.name = None if name is None else str(name).encode()
    if isinstance(values, dict):
        values = _write_values(out, values)
    o.values = _path_arg(values, "values")
    o.truth = _path_arg(truth, "truth")
    flag = ctypes.c_int(0)
    o.interrupt = ctypes.pointer(flag)

    raised = []  # the first exception of the callback, re-raised after the call

    def progress(ev_p, _user):
        # nothing may propagate into C: any exception stops the run at the next iteration
        try:
            if raised:
                return
            if on_event(RunEvent._from_c(ev_p.contents)):
                flag.value = 1
        except BaseException as exc:  # noqa: B902 (KeyboardInterrupt included)
            raised.append(exc)
            flag.value = 1

    cb = _ProgressFn(progress) if on_event is not None else _ProgressFn()
    summary = _RunSummary()
    err = _lib._dsoError()
    try:
        status = _lib.lib.dso_run_task(task.handle, out, ctypes.byref(o), cb, None,
                                       ctypes.byref(summary), ctypes.byref(err))
        result = RunSummary._from_c(summary, task.names)
    finally:
        _lib.lib.dso_run_summary_clear(ctypes.byref(summary))
        del cb  # the C side holds no reference after the call
    if raised:
        exc = raised[0]
        try:
            exc.dso_summary = result
        except AttributeError:
            pass
        raise exc
    if status != _lib.OK:
        code = err.code if err.code != _lib.OK else _lib.ERR_INTERNAL
        msg = err.msg.decode("utf-8", "replace") or "dso_run_task failed"
        e = Error(msg, code)
        e.summary = result
        raise e
    return result
