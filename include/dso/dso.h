// dso: Dynamical System Optimization on top of MuJoCo. The one header a program includes:
//
//   #include <dso/dso.h>
//
// and links with -ldso (pkg-config --cflags --libs dso, or CMake's find_package(dso) and the
// target dso::dso). Only the headers of include/dso/ are installed and only the functions they
// declare with DSO_API (export.h) are exported by libdso.so; no MuJoCo, OpenBLAS or cJSON header
// is needed to compile against them.
//
// Error model. Calls that can fail return a dsoStatus (DSO_OK = 0, failures positive), or NULL
// (constructors, names) or -1 (counts, indices) where their comment says so, and fill the
// caller's dsoError record (error.h) with the status and a message naming the file, field or
// index at fault and what was expected. Every public function accepts err == NULL: the call
// then still returns its failure value, only the message is lost. The functions of task.h clear
// err on entry, so after a call err holds that call's status. Library code never prints, exits
// or aborts; a non-finite θ, cost or gradient is never reported as success.
//
// Threads. A handle (dsoTask, dsoTaskFit, dsoTaskChainCost, dsoTaskRun) is used by one thread
// at a time, and a task given to dso_run_task belongs to that call until it returns; separate
// handles may be used in separate threads at once (the handles built on a task only read it, so
// several of them may share one task). Rollouts, least-squares fits and inverse dynamics run on
// dso's own worker threads (rollout.threads, fit.threads, fit.inverse_dynamics.threads), started
// and joined inside the call that needs them; while they run OpenBLAS is set to one thread and
// restored afterwards (a process-wide setting).
//
// MuJoCo's error and warning handlers. The first time dso loads a model, creates a simulator or
// calls MuJoCo, it sets MuJoCo's global mju_user_error and mju_user_warning to its own handlers,
// once per process (replacing any the program had set), and never restores them:
//   - error: inside a dso call, MuJoCo's fatal error jumps back to that call, which returns
//     DSO_ERR_MUJOCO with MuJoCo's message; outside dso calls (the program calling MuJoCo
//     itself) the handler only keeps the message and returns, so MuJoCo no longer exits the
//     process and carries on as after any user error handler that returns.
//   - warning: counted per thread and the last message kept (dso uses them to detect unstable
//     steps); nothing is printed or logged.
// A program that sets its own handlers after dso has started breaks dso's trapping of MuJoCo's
// errors: do not.
//
// Versioning. DSO_VERSION_MAJOR, _MINOR, _PATCH and DSO_VERSION_NUMBER (version.h) give the
// version of the headers compiled against; dso_version_number() and dso_version_string() that
// of the library linked at run time: compare DSO_VERSION_NUMBER with dso_version_number() to
// detect a mismatched libdso. The shared library's SONAME is libdso.so.MAJOR.MINOR: releases
// that differ only in the patch number are ABI compatible; while MAJOR is 0 every minor release
// may change the API and ABI (CMake's package version file accepts the same MAJOR.MINOR only).
#ifndef DSO_DSO_H
#define DSO_DSO_H

#include "dso/export.h"
#include "dso/version.h"
#include "dso/error.h"
#include "dso/task.h"
#include "dso/run.h"

#endif  // DSO_DSO_H
