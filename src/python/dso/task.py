"""Tasks, fits, the chain objective and runs: Python objects over include/dso/task.h."""

import ctypes
import os
import weakref

import numpy as np

from . import _lib
from ._lib import Error, call, ptr, vector
from .run import run_task


def _seed(seed):
    """The C seed argument: None is the task's rollout.seed, else an integer in [0, 2**64 - 1)."""
    if seed is None:
        return _lib.SEED_TASK
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= int(seed) < _lib.SEED_TASK:
        raise Error("seed: expected None (the task's rollout.seed) or an integer in "
                    "[0, 2**64 - 1), got %r" % (seed,), _lib.ERR_INPUT)
    return int(seed)

_fails_null = lambda r: not r  # noqa: E731  (a NULL handle)
_fails_neg = lambda r: r < 0  # noqa: E731

KINDS = {_lib.KIND_NONE: "none", _lib.KIND_FIT: "fit", _lib.KIND_CHAIN: "chain",
         _lib.KIND_ESTIMATOR: "estimator"}
BLOCKS = ("policy", "physics", "action_noise", "sensor", "sensor_noise", "corrector")
TRANSFORMS = ("identity", "log", "bounded")


class _Handle:
    """Owner of one C object, freed by close(), by the with-statement or when collected."""

    _free = None

    def __init__(self, handle, keep=None):
        self._h = handle
        self._keep = keep  # the object the handle borrows from, kept alive
        self._children = weakref.WeakSet()  # handles that borrow from this one
        if keep is not None:
            keep._children.add(self)

    def close(self):
        """Frees the C object now (idempotent); handles borrowing from it are closed first."""
        for child in list(getattr(self, "_children", ())):
            child.close()
        h, self._h = getattr(self, "_h", None), None
        if h:
            type(self)._free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def handle(self):
        if not self._h:
            raise Error("%s is closed" % type(self).__name__, _lib.ERR_INPUT)
        return self._h


class Task(_Handle):
    """A dso task file (tasks/*.json) with the current θ.

    ``Task(path)`` loads the task and its data; ``Task(path, data=False)`` reads no data file
    (to simulate the data the task will read). θ is held as ``u``, the unconstrained
    coordinates an optimizer moves; ``values`` are the natural values written into the model.
    Entries are read and set by name: ``task["physics.pole.mass"] = 0.5``.
    """

    _free = _lib.lib.dso_task_free

    def __init__(self, path, data=True):
        h = call(_lib.lib.dso_task_open, os.fsencode(path), 0 if data else 1, fails=_fails_null)
        super().__init__(h)
        self.path = os.fspath(path)
        n = call(_lib.lib.dso_task_ntheta, h, fails=_fails_neg)
        self.names = [call(_lib.lib.dso_task_theta_name, h, i, fails=_fails_null).decode()
                      for i in range(n)]
        self._u = np.zeros(n)
        call(_lib.lib.dso_task_theta_init, h, self._u)

    def __repr__(self):
        return "Task(%r, kind=%r, %d entries)" % (self.path, self.kind, len(self.names))

    # --- description
    @property
    def kind(self):
        """What ``dso run`` does with the task: "fit", "chain", "estimator" or "none"."""
        return KINDS[call(_lib.lib.dso_task_kind, self.handle, fails=_fails_neg)]

    def size(self, which):
        """A size: "ntheta", "nq", "nv", "na", "nu", "nsensordata", "nrollout", "horizon" or
        "nepisode" (episodes of the loaded data)."""
        codes = {"ntheta": _lib.SIZE_NTHETA, "nq": _lib.SIZE_NQ, "nv": _lib.SIZE_NV,
                 "na": _lib.SIZE_NA, "nu": _lib.SIZE_NU, "nsensordata": _lib.SIZE_NSENSORDATA,
                 "nrollout": _lib.SIZE_NROLLOUT, "horizon": _lib.SIZE_HORIZON,
                 "nepisode": _lib.SIZE_NEPISODE}
        if which not in codes:
            raise Error("size: unknown size %r, expected one of %s" % (which, ", ".join(codes)),
                        _lib.ERR_INPUT)
        return call(_lib.lib.dso_task_size, self.handle, codes[which], fails=_fails_neg)

    def index(self, name):
        """Index of the θ entry called name; Error naming it when there is none."""
        return call(_lib.lib.dso_task_theta_find, self.handle, name.encode(), fails=_fails_neg)

    def entry(self, name):
        """Layout of one θ entry: dict with block, transform, fixed, lower, upper."""
        i = self.index(name)
        block, transform, fixed = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        lower, upper = ctypes.c_double(), ctypes.c_double()
        call(_lib.lib.dso_task_theta_entry, self.handle, i, ctypes.byref(block),
             ctypes.byref(transform), ctypes.byref(fixed), ctypes.byref(lower),
             ctypes.byref(upper))
        return {"name": name, "block": BLOCKS[block.value],
                "transform": TRANSFORMS[transform.value], "fixed": bool(fixed.value),
                "lower": lower.value, "upper": upper.value}

    # --- θ
    @property
    def u(self):
        """θ in unconstrained coordinates (a copy; assign a whole vector to change it)."""
        return self._u.copy()

    @u.setter
    def u(self, u):
        u = vector(u, len(self.names), "u")
        self.natural(u)  # checks that every entry is finite
        self._u = u

    def natural(self, u):
        """Natural values v = T(u) of unconstrained coordinates u."""
        u = vector(u, len(self.names), "u")
        v = np.empty_like(u)
        call(_lib.lib.dso_task_theta_natural, self.handle, v, u)
        return v

    def unconstrained(self, v):
        """Unconstrained coordinates u = T⁻¹(v); Error naming an entry outside its bounds."""
        v = vector(v, len(self.names), "values")
        u = np.empty_like(v)
        call(_lib.lib.dso_task_theta_unconstrained, self.handle, u, v)
        return u

    @property
    def values(self):
        """θ as natural values (a copy), in the order of ``names``."""
        return self.natural(self._u)

    @values.setter
    def values(self, v):
        if isinstance(v, dict):
            self.set_values(v)
        else:
            self._u = self.unconstrained(v)

    def set_values(self, mapping):
        """Sets natural values by name from a dict {name: value}; all or nothing."""
        v = self.values
        for name, value in mapping.items():
            v[self.index(name)] = value
        self._u = self.unconstrained(v)

    def as_dict(self, u=None):
        """Natural values by name, at u (default: the task's θ)."""
        v = self.natural(self._u if u is None else u)
        return dict(zip(self.names, (float(x) for x in v)))

    def __getitem__(self, name):
        return float(self.values[self.index(name)])

    def __setitem__(self, name, value):
        self.set_values({name: value})

    def __contains__(self, name):
        return name in self.names

    def reset(self):
        """θ back to the entries' initial values."""
        call(_lib.lib.dso_task_theta_init, self.handle, self._u)

    def prior(self, u=None):
        """Gaussian prior cost L_prior and its gradient in u (default: the task's θ)."""
        u = vector(self._u if u is None else u, len(self.names), "u")
        cost, grad = ctypes.c_double(), np.zeros_like(u)
        call(_lib.lib.dso_task_prior, self.handle, ctypes.byref(cost), ptr(grad), u)
        return cost.value, grad

    # --- simulate, fit, chain objective, run
    def simulate(self, path, episodes=0, horizon=0, seed=None, excitation=0.0, validation=0,
                 values=None):
        """Records episodes from the task's chain (``dso simulate``) into the CSV file path.

        episodes and horizon 0 and seed None take the task's rollout settings; excitation is
        the std of extra white noise on every control; the last ``validation`` episodes are
        flagged validation. values: natural values (a dict by name, or a full vector) to
        simulate at; default the task's θ.
        """
        u = self._u
        if values is not None:
            if isinstance(values, dict):
                v = self.values
                for name, value in values.items():
                    v[self.index(name)] = value
            else:
                v = values
            u = self.unconstrained(v)
        call(_lib.lib.dso_task_simulate_csv, self.handle, os.fsencode(path), ptr(u),
             int(episodes), int(horizon), _seed(seed), float(excitation), int(validation))
        return os.fspath(path)

    def fit(self):
        """The task's least-squares fit to its data (a ``Fit``), starting at the task's θ."""
        return Fit(self)

    def chain_cost(self, rollouts=0, seed=None, horizon=0):
        """The chain objective on a fixed batch (a ``ChainCost``); rollouts and horizon 0 and seed
        None take the task's values."""
        return ChainCost(self, rollouts, seed, horizon)

    def cost_and_gradient(self, u=None, rollouts=0, seed=None, horizon=0, iteration=0):
        """Chain objective J and its pathwise gradient dJ/du at u (default: the task's θ).

        The batch of ``rollouts`` rollouts is keyed by (seed, iteration): the same arguments
        give the same noise at every u (common random numbers). The prior is not included
        (see ``prior``). Returns (J, grad).
        """
        with self.chain_cost(rollouts, seed, horizon) as cc:
            r = cc.evaluate(self._u if u is None else u, iteration=iteration)
        return r["J"], r["grad"]

    def run(self, max_iter=None, callback=None):
        """Optimizes θ as ``dso run`` does (LM for fits, the trainer for chain tasks).

        Runs max_iter iterations (default: the task's fit.max_iter or train.max_iter), a fit
        stops earlier when it converges. The task's θ becomes the result. callback(iteration,
        cost, u), when given, is called after every iteration. Returns (values by name, cost
        history): for fits the cost after each step, for chains the objective of each batch.
        """
        h = call(_lib.lib.dso_task_run_create, self.handle, fails=_fails_null)
        try:
            n = call(_lib.lib.dso_task_run_max_iter, h, fails=_fails_neg)
            if max_iter is not None:
                n = int(max_iter)
            u = self._u.copy()
            history = []
            cost, done = ctypes.c_double(), ctypes.c_int()
            for it in range(n):
                call(_lib.lib.dso_task_run_step, h, u, ctypes.byref(cost), ctypes.byref(done))
                history.append(cost.value)
                self._u = u.copy()
                if callback is not None:
                    callback(it, cost.value, u.copy())
                if done.value:
                    break
        finally:
            _lib.lib.dso_task_run_free(h)
        return self.as_dict(), history

    def run_into(self, outdir, max_iter=None, resume=False, plots=False, values=None,
                 truth=None, name=None, on_event=None):
        """Runs the task as ``dso run`` does, into the folder outdir (the library's run driver,
        dso_run_task): least squares for fits, the trainer for chain tasks, the estimator fit
        for estimator tasks. Returns a ``RunSummary``.

        outdir is made when missing and locked for the run; it receives checkpoint.json and
        progress.csv after every iteration, then result.json, model.xml and (fits)
        trajectories.csv. The run starts from the θ entries' initial values (not from ``u``)
        or from ``values``: a JSON file ({"name": value} or a result.json) or a dict
        {name: value}, written to OUTDIR/start_values.json; either replaces the task's initial
        values. max_iter counts iterations in all, resumed ones included (None: the task's
        setting); resume=True continues from OUTDIR/checkpoint.json and ends bit-identical to an
        uninterrupted run. plots=True writes gnuplot scripts (and runs gnuplot when installed).
        truth (fits): a JSON file of true values for the final table. name: the task as named
        in messages (default: its path).

        on_event(event), when given, receives every ``RunEvent`` in order; returning True stops
        the run after the current iteration (resumable: summary.stop "interrupted"). An
        exception raised in on_event (KeyboardInterrupt from Ctrl-C included) also stops the run
        there and is re-raised when the library returns, with the summary as ``.dso_summary``.
        A failed run raises ``Error`` with the library's message and the summary as
        ``.summary`` (θ unchanged). Otherwise the task's θ (``u``) becomes the run's final θ
        (the last recorded iteration's when stopped).
        """
        try:
            summary = run_task(self, outdir, max_iter=max_iter, resume=resume, plots=plots,
                               values=values, truth=truth, name=name, on_event=on_event)
        except BaseException as exc:
            # stopped by on_event: θ at the last recorded iteration (as for an interrupt)
            self._take_theta(getattr(exc, "dso_summary", None))
            raise
        self._take_theta(summary)
        return summary

    def _take_theta(self, summary):
        n = len(self.names)
        if summary is not None and summary.theta.size >= n and n:
            u = summary.theta[:n].copy()
            if np.all(np.isfinite(u)):
                self._u = u


class Fit(_Handle):
    """The least-squares fit of a task to its data (fit.h): residuals, Jacobian, cost, LM steps.

    The residuals are those of ``dso run``: multiple-shooting windows (sysid), calibration and
    the prior, with cost 0.5 |r|². ``u`` holds the fit's current θ (starting at the task's);
    ``step()`` moves it. Methods taking ``u`` default to it.
    """

    _free = _lib.lib.dso_task_fit_free

    def __init__(self, task):
        h = call(_lib.lib.dso_task_fit_create, task.handle, fails=_fails_null)
        super().__init__(h, keep=task)
        self.task = task
        self.u = task.u
        self.nresidual = call(_lib.lib.dso_task_fit_nresidual, h, fails=_fails_neg)
        nf = call(_lib.lib.dso_task_fit_nfitted, h, fails=_fails_neg)
        idx = np.zeros(nf, dtype=np.intc)
        call(_lib.lib.dso_task_fit_fitted, h, idx)
        self.fitted = idx.astype(int)  # indices into θ of the fitted entries (others held)

    @property
    def fitted_names(self):
        """Names of the fitted entries."""
        return [self.task.names[i] for i in self.fitted]

    def _u_or(self, u):
        return vector(self.u if u is None else u, len(self.task.names), "u")

    def residual(self, u=None):
        """Residual vector r(u) (nresidual)."""
        u = self._u_or(u)
        r = np.empty(self.nresidual)
        call(_lib.lib.dso_task_fit_residual, self.handle, r, u)
        return r

    def jacobian(self, u=None):
        """Jacobian dr/du (nresidual x ntheta) by central differences; held columns are 0."""
        u = self._u_or(u)
        J = np.empty((self.nresidual, len(self.task.names)))
        call(_lib.lib.dso_task_fit_jacobian, self.handle, J.reshape(-1), None, u)
        return J

    def cost(self, u=None, parts=False):
        """Cost 0.5 |r(u)|²; with parts=True also a dict of sysid, calib and prior."""
        u = self._u_or(u)
        c, p = ctypes.c_double(), np.zeros(3)
        call(_lib.lib.dso_task_fit_cost, self.handle, ctypes.byref(c), ptr(p), u)
        if parts:
            return c.value, {"sysid": p[0], "calib": p[1], "prior": p[2]}
        return c.value

    def step(self):
        """One Levenberg-Marquardt iteration from ``u`` (moved). Returns (cost, done)."""
        u = self._u_or(None)
        c, d = ctypes.c_double(), ctypes.c_int()
        call(_lib.lib.dso_task_fit_step, self.handle, u, ctypes.byref(c), ctypes.byref(d))
        self.u = u
        return c.value, bool(d.value)

    def covariance(self, u=None):
        """(cov, se): covariance of u (ntheta x ntheta, zero for held entries) and the
        standard errors of the natural values."""
        u = self._u_or(u)
        n = len(self.task.names)
        cov, se = np.zeros((n, n)), np.zeros(n)
        call(_lib.lib.dso_task_fit_covariance, self.handle, ptr(cov), ptr(se), u)
        return cov, se


class ChainCost(_Handle):
    """The objective J of a chain task on a fixed batch of rollouts, with its pathwise gradient.

    ``evaluate(u, iteration)`` draws the batch keyed by (seed, iteration): the same iteration
    gives the same noise at every u (common random numbers), so finite differences of J are
    meaningful.
    """

    _free = _lib.lib.dso_task_chain_cost_free

    def __init__(self, task, rollouts=0, seed=None, horizon=0):
        h = call(_lib.lib.dso_task_chain_cost_create, task.handle, int(rollouts), int(horizon),
                 _seed(seed), fails=_fails_null)
        super().__init__(h, keep=task)
        self.task = task

    def evaluate(self, u=None, gradient=True, iteration=0):
        """dict with J, J_se, diverged and (gradient=True) grad, grad_se at u."""
        n = len(self.task.names)
        u = vector(self.task.u if u is None else u, n, "u")
        J, Jse, div = ctypes.c_double(), ctypes.c_double(), ctypes.c_int()
        g = np.zeros(n) if gradient else None
        gse = np.zeros(n) if gradient else None
        call(_lib.lib.dso_task_chain_cost_eval, self.handle, ctypes.byref(J), ctypes.byref(Jse),
             ptr(g), ptr(gse), ctypes.byref(div), u, int(iteration))
        out = {"J": J.value, "J_se": Jse.value, "diverged": div.value}
        if gradient:
            out["grad"], out["grad_se"] = g, gse
        return out

    def __call__(self, u=None, iteration=0):
        """J at u."""
        return self.evaluate(u, gradient=False, iteration=iteration)["J"]
