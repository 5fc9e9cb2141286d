"""Loading libdso and declaring the flat C API of include/dso/task.h for ctypes."""

import ctypes
import ctypes.util
import os

import numpy as np

# status codes of include/dso/error.h (dsoStatus)
OK = 0
ERR_INPUT = 1
ERR_IO = 2
ERR_MEMORY = 3
ERR_MUJOCO = 4
ERR_NUMERIC = 5
ERR_INTERNAL = 6

# DSO_SEED_TASK of include/dso/task.h: "the task's rollout.seed"
SEED_TASK = 2**64 - 1

_STATUS_NAMES = {
    ERR_INPUT: "bad input",
    ERR_IO: "i/o error",
    ERR_MEMORY: "out of memory",
    ERR_MUJOCO: "mujoco error",
    ERR_NUMERIC: "numerical failure",
    ERR_INTERNAL: "internal error",
}

# task kinds (dsoTaskKind) and sizes (dsoTaskSize) of include/dso/task.h
KIND_NONE, KIND_FIT, KIND_CHAIN, KIND_ESTIMATOR = range(4)
(SIZE_NTHETA, SIZE_NQ, SIZE_NV, SIZE_NA, SIZE_NU, SIZE_NSENSORDATA, SIZE_NROLLOUT,
 SIZE_HORIZON, SIZE_NEPISODE) = range(9)


class Error(Exception):
    """A dso call failed: ``message`` says what and where, ``code`` is the dsoStatus."""

    summary = None  # Task.run_into failures: the run's RunSummary (stop "failed", "refused")

    def __init__(self, message, code=ERR_INTERNAL):
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def status(self):
        """Short name of the status code ("bad input", "numerical failure", ...)."""
        return _STATUS_NAMES.get(self.code, "unknown status")


class _dsoError(ctypes.Structure):
    # include/dso/error.h: typedef struct { dsoStatus code; char msg[DSO_ERROR_LEN]; } dsoError
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 1024)]


def _candidates():
    """Paths to try for libdso, in order."""
    env = os.environ.get("DSO_LIBRARY")
    if env:
        return [env]
    out = []
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from . import _install  # written by cmake --install: where the library went
        out.append(os.path.normpath(os.path.join(here, _install.LIBRARY)))
    except ImportError:
        pass
    out.append(os.path.join(here, "libdso.so"))
    found = ctypes.util.find_library("dso")
    if found:
        out.append(found)
    return out


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as exc:
            tried.append("%s (%s)" % (path, exc))
    raise Error("libdso not found; set DSO_LIBRARY to the path of libdso.so. Tried: " +
                ("; ".join(tried) if tried else "nothing (find_library found no libdso)"),
                ERR_IO)


_P = ctypes.c_void_p
_I = ctypes.c_int
_D = ctypes.c_double
_S = ctypes.c_char_p
_U64 = ctypes.c_uint64
_E = ctypes.POINTER(_dsoError)
_DP = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")
_DPN = _P  # double* that may be NULL: pass None or arr.ctypes.data
_IP = np.ctypeslib.ndpointer(dtype=np.intc, flags="C_CONTIGUOUS")
_DREF = ctypes.POINTER(ctypes.c_double)
_IREF = ctypes.POINTER(ctypes.c_int)

_PROTOTYPES = {
    "dso_task_open": (_P, [_S, _I, _E]),
    "dso_task_free": (None, [_P]),
    "dso_task_kind": (_I, [_P, _E]),
    "dso_task_size": (_I, [_P, _I, _E]),
    "dso_task_ntheta": (_I, [_P, _E]),
    "dso_task_theta_name": (_S, [_P, _I, _E]),
    "dso_task_theta_find": (_I, [_P, _S, _E]),
    "dso_task_theta_entry": (_I, [_P, _I, _IREF, _IREF, _IREF, _DREF, _DREF, _E]),
    "dso_task_theta_init": (_I, [_P, _DP, _E]),
    "dso_task_theta_natural": (_I, [_P, _DP, _DP, _E]),
    "dso_task_theta_unconstrained": (_I, [_P, _DP, _DP, _E]),
    "dso_task_prior": (_I, [_P, _DREF, _DPN, _DP, _E]),
    "dso_task_simulate_csv": (_I, [_P, _S, _DPN, _I, _I, _U64, _D, _I, _E]),
    "dso_task_fit_create": (_P, [_P, _E]),
    "dso_task_fit_free": (None, [_P]),
    "dso_task_fit_nresidual": (_I, [_P, _E]),
    "dso_task_fit_nfitted": (_I, [_P, _E]),
    "dso_task_fit_fitted": (_I, [_P, _IP, _E]),
    "dso_task_fit_residual": (_I, [_P, _DP, _DP, _E]),
    "dso_task_fit_jacobian": (_I, [_P, _DP, _DPN, _DP, _E]),
    "dso_task_fit_cost": (_I, [_P, _DREF, _DPN, _DP, _E]),
    "dso_task_fit_step": (_I, [_P, _DP, _DREF, _IREF, _E]),
    "dso_task_fit_covariance": (_I, [_P, _DPN, _DPN, _DP, _E]),
    "dso_task_chain_cost_create": (_P, [_P, _I, _I, _U64, _E]),
    "dso_task_chain_cost_free": (None, [_P]),
    "dso_task_chain_cost_eval": (_I, [_P, _DREF, _DREF, _DPN, _DPN, _IREF, _DP, _I, _E]),
    "dso_task_run_create": (_P, [_P, _E]),
    "dso_task_run_free": (None, [_P]),
    "dso_task_run_max_iter": (_I, [_P, _E]),
    "dso_task_run_step": (_I, [_P, _DP, _DREF, _IREF, _E]),
    "dso_version_string": (_S, []),
}

ErrorPointer = _E  # dsoError* for the declarations of other modules


def declare(prototypes):
    """Sets restype and argtypes of lib's functions from {name: (restype, argtypes)}."""
    for name, (res, args) in prototypes.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise Error("%s does not export %s: the library is older than this package" %
                        (getattr(lib, "_name", "libdso"), name), ERR_IO) from None
        fn.restype = res
        fn.argtypes = args


lib = _load()
declare(_PROTOTYPES)


def call(fn, *args, fails=lambda r: r != 0):
    """Calls fn(*args, err) and raises Error when fails(result) holds."""
    err = _dsoError()
    result = fn(*args, ctypes.byref(err))
    if fails(result):
        code = err.code if err.code != OK else ERR_INTERNAL
        msg = err.msg.decode("utf-8", "replace") or "%s failed" % fn.__name__
        raise Error(msg, code)
    return result


def ptr(arr):
    """Address of a float64 array for a double* parameter that may be NULL (None stays None)."""
    return None if arr is None else arr.ctypes.data


def vector(x, n, what):
    """x as a new contiguous float64 vector of n values; raises Error for another size."""
    a = np.array(x, dtype=np.float64, copy=True).reshape(-1)
    if a.size != n:
        raise Error("%s: expected %d values, got %d" % (what, n, a.size), ERR_INPUT)
    return np.ascontiguousarray(a)
