// Strict parsers for the values of command-line options (CLI-private). Each parser takes the
// whole string: no empty values, no trailing characters, no wrap-around, no inf or nan. On a bad
// value it prints one line "dso VERB: OPTION: expected ..., got 'VALUE'" to stderr and returns 0;
// the caller then exits with status 2.
#ifndef DSO_CLI_ARGS_H
#define DSO_CLI_ARGS_H

// Largest seed an option accepts: 2^62 - 1 (random streams are keyed by 64-bit integers).
#define DSO_ARGS_MAX_SEED 4611686018427387903LL

// Bits of dso_args_double's open argument: the bound itself is excluded.
enum { DSO_ARGS_OPEN_LO = 1, DSO_ARGS_OPEN_HI = 2 };

// The value of the option argv[*i] (argv[*i + 1]), advancing *i past it. When the option is the
// last argument prints "dso VERB: OPTION: missing value (...)" and returns NULL.
const char* dso_args_value(int argc, char** argv, int* i, const char* verb);

// Reads s as a whole decimal integer in [lo, hi] (leading blanks, an empty string, trailing
// characters, values that overflow long long and values outside the range are refused) into *out.
// Returns 1 on success, 0 after printing the message.
int dso_args_int(long long* out, const char* s, long long lo, long long hi, const char* verb,
                 const char* opt);

// As dso_args_int for an int in [lo, hi].
int dso_args_int32(int* out, const char* s, int lo, int hi, const char* verb, const char* opt);

// Reads s as a whole finite number in the range from lo to hi into *out: open (DSO_ARGS_OPEN_LO,
// DSO_ARGS_OPEN_HI, or 0) excludes a bound; an infinite bound means no bound on that side. inf,
// nan, hexadecimal numbers, empty strings and trailing characters are refused. Returns 1 on
// success, 0 after printing the message.
int dso_args_double(double* out, const char* s, double lo, double hi, int open, const char* verb,
                    const char* opt);

// Checks that s is not empty (file names and other text values). Returns 1 if it is not, 0 after
// printing "dso VERB: OPTION: expected WHAT, got ''".
int dso_args_nonempty(const char* s, const char* what, const char* verb, const char* opt);

#endif  // DSO_CLI_ARGS_H
