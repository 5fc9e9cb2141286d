// Datasets: recorded episodes of a MuJoCo model, read from and written to CSV.
//
// A CSV file has a header line naming its columns by model elements, then one line per sample:
//   time              s, required; strictly increasing inside an episode; a file whose median
//                     step exceeds 500 model timesteps is refused (time in ms or us)
//   episode           optional integer: a new episode starts on the row where it changes
//   validation        optional 0/1, constant inside an episode: 1 marks a validation episode
//   qpos.<joint>      qpos.<joint>[k] for joints with several qpos entries (ball 4, free 7)
//   qvel.<joint>      qvel.<joint>[k] over the joint's dofs (ball 3, free 6)
//   ctrl.<actuator>
//   sensor.<sensor>   sensor.<sensor>[k] for sensors of dimension above 1
// Any subset of the model entries may be given (positions only, say): the dataset keeps a
// presence mask per entry, and every file of a dataset must give the same entries. The field
// separator is ',', fields may be padded with blanks, blank lines are skipped, CRLF line ends are
// accepted. Every error names the file and line, and for a cell also the column as
// "file:line:column" (column = 1-based field number) with the column's name.
//
// A column map renames ("t_s" -> "time"), rescales (stored = scale * csv + offset) or ignores CSV
// columns. In a task file the dataset is the "data" object (read by config/dataset_json.h):
//   "data": {
//     "files": ["recording.csv"],                  // or one string; relative to the task's folder
//     "columns": {"t_s": "time", "segment": "episode", "note": "ignore",
//                 "theta1_rad": {"to": "qpos.hinge", "scale": 1, "offset": -3.141592653589793}},
//     "resample": true,        // onto the model timestep grid from each episode's first time
//     "stride": 1,             // keep every stride-th sample (after resampling)
//     "max_episodes": 0,       // 0: all
//     "window": [0, null],     // s from each episode's first sample; null: to its end
//     "decimate": "auto",      // low-pass before resampling onto a slower grid (below)
//     "derived": {"qpos.elbow": "theta2 - theta1"}  // columns computed from CSV columns (below)
//   }
// "resample" also takes "linear" (same as true) and "none" (same as false).
//
// Files. An entry of "files" is a path or an object with per-file options:
//   {"path": "held_out.csv",   // required
//    "validation": true,       // every episode of the file is (true) or is not (false) a
//                              // validation episode, whatever its validation column says
//    "columns": {...},         // column map entries for this file only (looked up before the
//                              // data-level map; each must name a column of the file)
//    "derived": {...}}         // derived columns for this file (a target also derived at the data
//                              // level takes the file's expression)
//
// Derived columns. "derived" maps a dataset column (qpos, qvel, ctrl or sensor) to a linear
// combination of CSV columns with numeric coefficients and an optional constant:
//   "theta2 - theta1", "0.001*enc_counts + 0.1", "-2.5e-3 * 'raw-angle' / 2 + pi_off"
// Terms are joined by + and -; a term is a product of numbers (* or /) and at most one CSV
// column name; a name is [A-Za-z_][A-Za-z0-9_.[]]* or any text in single quotes; no parentheses.
// Columns are named as in the CSV header and enter with their raw values (the column map's
// scale and offset are not applied). A column used only by derived columns needs no map entry.
// Errors name the file, the JSON path and the 1-based character position in the expression.
//
// Decimation. When a recording is sampled faster than the grid it is resampled onto, plain
// interpolation aliases the content above the grid's Nyquist rate. "decimate": k (an integer
// >= 2) low-passes every column of each episode, before resampling, with the zero-phase
// triangular kernel w_j = k - |j|, |j| < k (a k-sample moving average run forward and backward;
// its gain is ((1/k) sin(k w/2) / sin(w/2))^2 at w rad/sample, so 0 at the grid rate and its
// multiples), normalized, the half-width shrinking symmetrically near an episode's ends (a linear
// signal passes unchanged). "auto" (the default) uses k when resampling and the grid spacing
// (stride x timestep) is k >= 2 times the episode's mean sample spacing within 1% and every
// spacing is within 1% of the mean; any other recording is interpolated without a filter (the
// ratio must be an integer for the kernel's zeros to fall on the grid rate). 1 turns the filter
// off. Without resampling, "decimate": k filters, then keeps every k-th sample (then every
// stride-th of those). Every column is filtered, ctrl included (the mean input over the step).
#ifndef DSO_DATASET_H
#define DSO_DATASET_H

#include <mujoco/mujoco.h>

#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Default limit on the size of one CSV file, in bytes (also the most dso reads from any file).
#define DSO_DATASET_MAX_BYTES (64L << 20)

// One entry of a column map.
typedef struct dsoColumnMap_ {
  char* csv;      // column name as in the CSV header (owned)
  char* to;       // dataset column it gives ("time", "qpos.hinge", ...); NULL: ignore the column
  double scale;   // stored value = scale * CSV value + offset (default 1)
  double offset;  // (default 0)
} dsoColumnMap;

// A derived column: to = constant + sum_k coef[k] * (raw value of CSV column src[k]).
typedef struct dsoDerivedColumn_ {
  char* to;         // dataset column it gives ("qpos.elbow") (owned)
  char* expr;       // the expression as written, for messages (owned)
  int nterm;        // distinct CSV columns named (0 for a constant)
  char** src;       // (nterm) CSV column names (owned)
  double* coef;     // (nterm) finite coefficients
  double constant;  // finite
} dsoDerivedColumn;

// Options of one file of a dataset.
typedef struct dsoDataFile_ {
  int validation;             // 1 or 0: every episode of the file is or is not a validation
                              // episode; -1: the file's validation column decides (default)
  int ncolumn;                // column map entries of this file (default none)
  dsoColumnMap* column;       // (ncolumn) (owned)
  int nderived;               // derived columns of this file (default none)
  dsoDerivedColumn* derived;  // (nderived) (owned)
} dsoDataFile;

// Value of dsoDatasetSpec.decimate: choose the filter from the sample spacing (see above).
#define DSO_DECIMATE_AUTO 0

// Dataset settings (OSQP style): fill with dso_dataset_spec_default and the dso_dataset_spec_add_*
// calls (or read a task's "data" object with config/dataset_json.h), change fields, pass to
// dso_dataset_load; release the lists with dso_dataset_spec_clear.
typedef struct dsoDatasetSpec_ {
  int nfile;              // files to read, in order (default none)
  char** file;            // (nfile) paths as they are opened (owned)
  int ncolumn;            // column map entries (default none)
  dsoColumnMap* column;   // (ncolumn) (owned)
  int resample;           // 1: resample each episode by linear interpolation onto the grid
                          // t0 + k * stride * timestep, t0 its first time (default 1)
  int stride;             // keep every stride-th sample, after resampling (default 1)
  int max_episodes;       // keep the first max_episodes episodes in file order; 0: all (default 0).
                          // Files after the one that completes the count are not read.
  double window[2];       // keep samples with window[0] <= t - t_first <= window[1], t_first the
                          // episode's first time, s (default 0, +INFINITY)
  long max_bytes;         // largest CSV file accepted, at most DSO_DATASET_MAX_BYTES (default that)
  dsoDataFile* file_opt;  // (nfile) per-file options, grown by dso_dataset_spec_add_file (owned);
                          // NULL: the defaults for every file
  int nderived;           // data-level derived columns (default none)
  dsoDerivedColumn* derived;  // (nderived) (owned)
  int decimate;           // low-pass width k before resampling: DSO_DECIMATE_AUTO (default),
                          // 1 none, k >= 2 always
} dsoDatasetSpec;

// Fills spec with the defaults listed above (no lists: nothing to free).
void dso_dataset_spec_default(dsoDatasetSpec* spec);

// Frees the lists of spec and sets it back to the defaults. NULL is a no-op.
void dso_dataset_spec_clear(dsoDatasetSpec* spec);

// Appends a file: path is taken as given when absolute or when base_dir is NULL or "", else
// relative to the folder base_dir.
dsoStatus dso_dataset_spec_add_file(dsoDatasetSpec* spec, const char* base_dir, const char* path,
                                    dsoError* err);

// Appends a column map entry: CSV column csv gives dataset column to (NULL: ignored) as
// scale * value + offset. A second entry for the same csv name is an error.
dsoStatus dso_dataset_spec_add_column(dsoDatasetSpec* spec, const char* csv, const char* to,
                                      double scale, double offset, dsoError* err);

// Appends a column map entry to file (an index into spec->file) only; checks as
// dso_dataset_spec_add_column, and the file must give the column.
dsoStatus dso_dataset_spec_add_file_column(dsoDatasetSpec* spec, int file, const char* csv,
                                           const char* to, double scale, double offset,
                                           dsoError* err);

// Parses expr (grammar above) and appends the derived column to = expr at the data level
// (file -1) or for file (an index into spec->file). A second entry for the same target at the
// same level is an error. Parse errors give the 1-based position in expr.
dsoStatus dso_dataset_spec_add_derived(dsoDatasetSpec* spec, int file, const char* to,
                                       const char* expr, dsoError* err);

// Removes every file and its options from spec, keeping the other settings (to read other
// recordings with a task's column map and settings).
void dso_dataset_spec_clear_files(dsoDatasetSpec* spec);

// Parts of the model state and input a dataset records.
typedef enum dsoDataGroup_ {
  DSO_DATA_QPOS = 0,   // qpos (nq)
  DSO_DATA_QVEL,       // qvel (nv)
  DSO_DATA_CTRL,       // ctrl (nu)
  DSO_DATA_SENSOR,     // sensordata (nsensordata)
  DSO_NDATA
} dsoDataGroup;

// One episode: T samples on a common time line.
typedef struct dsoEpisode_ {
  int T;                // samples (at least 2 when read from CSV)
  double* time;         // (T) s, strictly increasing
  double* qpos;         // (T x nq) row-major; entries the dataset lacks hold the model's qpos0
  double* qvel;         // (T x nv) row-major; lacking entries 0
  double* ctrl;         // (T x nu) row-major; lacking entries 0
  double* sensordata;   // (T x nsensordata) row-major; lacking entries 0
  int validation;       // 1: a validation episode (keep it out of fitting)
  long id;              // value of the episode column; without one, the episode's index in the
                        // dataset
  int file;             // source: index into dataset->file; -1 when built in memory
  int line;             // line of the source file holding the episode's first row; 0 in memory
  int decimate;         // width k of the low-pass applied before resampling; 0 or 1: none
} dsoEpisode;

// A dataset. Everything is owned by it; fields are read-only except through the calls below,
// and except the masks and the episode arrays of a dataset built with dso_dataset_create.
typedef struct dsoDataset_ {
  int nq, nv, nu, nsensordata;  // sizes of the model the dataset was made for
  int* has[DSO_NDATA];          // presence masks, has[group][i] = 1 where entry i is recorded:
                                // has[DSO_DATA_QPOS] (nq), [QVEL] (nv), [CTRL] (nu), [SENSOR]
                                // (nsensordata)
  double dt;                    // sample spacing when resampled (stride * timestep, s); else 0
  int nepisode;
  dsoEpisode* episode;          // (nepisode)
  int nfile;
  char** file;                  // (nfile) source files (owned)
  int capacity;                 // allocated episodes (private)
} dsoDataset;

// Reads the files of spec against model m (which names the columns and gives the timestep).
// On failure *out is NULL and err names the file, line and column at fault.
dsoStatus dso_dataset_load(dsoDataset** out, const mjModel* m, const dsoDatasetSpec* spec,
                           dsoError* err);

// Reads one CSV file with the settings of spec (may be NULL for the defaults; its files are not
// read).
dsoStatus dso_dataset_read_csv(dsoDataset** out, const mjModel* m, const char* path,
                               const dsoDatasetSpec* spec, dsoError* err);

// Creates an empty dataset for m, with every mask 0 and dt 0, to fill in memory (e.g. by a
// simulation that records ground truth): add episodes, fill their arrays, set the masks.
dsoStatus dso_dataset_create(dsoDataset** out, const mjModel* m, dsoError* err);

// Appends an episode of T >= 1 samples with time 0, qpos rows set to qpos0 and the rest 0.
// Returns its index, or -1 with err set. Earlier dsoEpisode pointers may move: index afresh.
int dso_dataset_add_episode(dsoDataset* ds, const mjModel* m, int T, dsoError* err);

// Frees a dataset; NULL is a no-op.
void dso_dataset_free(dsoDataset* ds);

// Writes ds as CSV (atomically: the old file stays until the new one is complete) with the
// columns time, episode (ordinal 0, 1, ...), validation and every recorded entry under its
// canonical name, numbers as %.17g so that reading the file back gives the same values. Fails
// when m's sizes differ from ds's or a recorded entry's element has no name.
dsoStatus dso_dataset_write_csv(const char* path, const dsoDataset* ds, const mjModel* m,
                                dsoError* err);

// Number of episodes (0 for NULL).
int dso_dataset_nepisode(const dsoDataset* ds);

// Number of validation episodes (0 for NULL).
int dso_dataset_nvalidation(const dsoDataset* ds);

// Total number of samples over all episodes (0 for NULL).
long dso_dataset_nsample(const dsoDataset* ds);

// Episode n (0-based), or NULL when n is out of range.
const dsoEpisode* dso_dataset_episode(const dsoDataset* ds, int n);

// qvel of every sample of episode n as a multiple-shooting fit starts its windows: recorded
// entries as they are; the others by differences of the recorded qpos (mj_differentiatePos over
// the sample spacing ds->dt) when the dataset records any qpos entry, else 0: backward under the
// Euler and implicit integrators, whose position update q' = q + h v' makes them exact on
// simulated data (central differences are off by h qacc / 2), central under RK4, one-sided at
// the ends. qvel (T x nv) receives the result; work (nv) is scratch. ds must be resampled
// (dt > 0) and made for m.
dsoStatus dso_dataset_episode_qvel(double* qvel, double* work, const mjModel* m,
                                   const dsoDataset* ds, int n, dsoError* err);

// Writes the canonical column name of entry index of group into buf (size len), e.g.
// "qpos.hinge", "qvel.root[4]", "sensor.imu_acc[2]"; returns the length snprintf would write, or
// -1 when index is out of range or the element has no name (buf then holds e.g. "qpos #3").
int dso_dataset_column_name(char* buf, int len, const mjModel* m, dsoDataGroup group, int index);

#ifdef __cplusplus
}
#endif
#endif  // DSO_DATASET_H
