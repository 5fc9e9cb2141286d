"""dso: Dynamical System Optimization on MuJoCo, from Python.

A ctypes binding of libdso's flat API (include/dso/task.h) with numpy arrays in and out::

    import dso
    task = dso.Task("tasks/arm_sysid.json")        # the task and its data
    task["physics.upper_arm.mass"] = 0.9            # θ by name, natural values
    fit = task.fit()                                # least squares on the recorded data
    r, J = fit.residual(task.u), fit.jacobian(task.u)
    values, history = task.run()                    # LM / trainer steps, θ in memory
    summary = task.run_into("out", max_iter=20)     # what `dso run` does, files in out/

The library is found through the environment variable DSO_LIBRARY, then next to the installed
package, then by ctypes.util.find_library("dso"). Every failing call raises ``dso.Error`` with
the library's message and status code.
"""

from ._lib import Error, lib
from .task import BLOCKS, TRANSFORMS, ChainCost, Fit, Task
from .data import read_csv
from .run import RunEvent, RunSummary

__all__ = ["Error", "Task", "Fit", "ChainCost", "RunEvent", "RunSummary", "read_csv", "version",
           "BLOCKS", "TRANSFORMS"]


def version():
    """Version of the loaded libdso, e.g. "0.3.0"."""
    return lib.dso_version_string().decode()
