#!/usr/bin/env python3
"""System identification with scipy.optimize.least_squares on dso's residual.

dso computes the multiple-shooting residuals r(u) of a fit task (windows of the recorded
episodes re-simulated from the recorded states with the recorded controls, paper section 5.1,
L_sysid) and their Jacobian; scipy does the optimization. The task starts from its "init"
values, for tasks/arm_sysid.json 30% off the truth.

    python3 sysid_scipy.py TASK.json [--truth TRUTH.json]

The task's data must exist: for tasks/arm_sysid.json record it first with
    dso simulate tasks/arm_sysid.json -o build/arm_sysid.csv --excitation 0.6 --validation 2 \\
        --values tasks/truth/arm_sysid.json
"""

import argparse
import json
import sys

from scipy.optimize import least_squares

import dso


def identify(task_path):
    """Fits the task's free physics entries; returns (task at the result, scipy's result)."""
    task = dso.Task(task_path)
    with task.fit() as fit:
        u0 = task.u
        free = fit.fitted  # indices of the fitted entries in θ

        def full(x):  # θ with the free entries set to x
            u = u0.copy()
            u[free] = x
            return u

        result = least_squares(lambda x: fit.residual(full(x)), u0[free],
                               jac=lambda x: fit.jacobian(full(x))[:, free], x_scale="jac")
        task.u = full(result.x)
    return task, result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("task", help="a fit task (tasks/*.json with a data section)")
    ap.add_argument("--truth", help="true values by name, {\"name\": value}, for the table")
    args = ap.parse_args(argv)
    init = dso.Task(args.task).as_dict()
    task, result = identify(args.task)
    truth = json.load(open(args.truth)) if args.truth else {}
    print("least_squares: %s" % result.message)
    print("%d residual and %d Jacobian evaluations, final cost %.3g"
          % (result.nfev, result.njev, result.cost))
    print("%-32s %12s %12s %12s" % ("entry", "initial", "identified", "truth"))
    for name, value in task.as_dict().items():
        print("%-32s %12.6g %12.6g %12s" % (name, init[name], value,
                                           "%.6g" % truth[name] if name in truth else "-"))
    if truth:
        err = max(abs(task[n] - v) / max(abs(v), 1e-12) for n, v in truth.items())
        print("largest relative error against the truth: %.2e" % err)
    return task, result


if __name__ == "__main__":
    try:
        main()
    except dso.Error as exc:
        print("sysid_scipy: %s" % exc, file=sys.stderr)
        sys.exit(2 if exc.code == 1 else 1)
