// The dso command-line program: one function per verb; each returns the process exit status
// (0 ok, 1 failure, 2 bad input). Only the CLI prints or exits.
#ifndef DSO_CLI_H
#define DSO_CLI_H

#include "dso/error.h"

// Exit statuses of the CLI.
enum { DSO_EXIT_OK = 0, DSO_EXIT_FAIL = 1, DSO_EXIT_INPUT = 2 };

// Most --data files one command takes.
#define DSO_CLI_MAX_DATA 64

// Maps a library status to an exit status: bad input (and unreadable input files) give 2.
int dso_cli_exit_status(dsoStatus code);

// Prints "dso VERB: message" for err to stderr and returns its exit status.
int dso_cli_fail(const char* verb, const dsoError* err);

// True if argv holds -h or --help.
int dso_cli_wants_help(int argc, char** argv);

int dso_cli_info(int argc, char** argv);
int dso_cli_check(int argc, char** argv);
int dso_cli_gradcheck(int argc, char** argv);
int dso_cli_run(int argc, char** argv);
int dso_cli_verify(int argc, char** argv);
int dso_cli_simulate(int argc, char** argv);
int dso_cli_evaluate(int argc, char** argv);

#endif  // DSO_CLI_H
