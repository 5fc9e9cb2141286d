// dso_run_task (include/dso/run.h): the one loop of a run over a driver (run_driver.h). It owns
// the output folder (made, locked, temporary files of a killed run removed), the checkpoint and
// resume, progress.csv, refusals, interrupts, the plots and the events; the drivers own their
// optimizers and final outputs.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dso/run.h"
#include "apps/run.h"
#include "apps/run_driver.h"
#include "config/values_file.h"
#include "core/io.h"
#include "mujoco/mjcf.h"
#include "mujoco/theta.h"

// ---- text

static void text_vprintf(dsoRunText* t, const char* fmt, va_list ap) {
  if (t->failed) return;
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, aq);
  va_end(aq);
  if (n < 0) {
    t->failed = 1;
    return;
  }
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + (size_t)n + 1) cap *= 2;
    char* s = realloc(t->s, cap);
    if (!s) {
      t->failed = 1;
      return;
    }
    t->s = s;
    t->cap = cap;
  }
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  t->len += (size_t)n;
}

void dso_run_text_printf(dsoRunText* t, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(t, fmt, ap);
  va_end(ap);
}

void dso_run_text_free(dsoRunText* t) {
  free(t->s);
  memset(t, 0, sizeof(*t));
}

static void text_reset(dsoRunText* t) {
  t->len = 0;
  if (t->s) t->s[0] = '\0';
  t->failed = 0;
}

// ---- the run's context

struct dsoRunCtx_ {
  const char* outdir;
  const char* name;
  const dsoRunOptions* o;
  const dsoRunDriver* d;
  dsoRunProgressFn progress;
  void* user;
  dsoRunSummary* sum;  // may be NULL
  dsoRunText note;     // pending NOTE text
  dsoRunText line;     // scratch for one event's text
  char checkpoint[4200];
  char progress_csv[4200];
  int lock;
};

const char* dso_run_ctx_outdir(const dsoRunCtx* ctx) { return ctx->outdir; }

void dso_run_join(char* buf, size_t len, const char* outdir, const char* name) {
  snprintf(buf, len, "%s/%s", outdir, name);
}

static void event_init(dsoRunEvent* ev, const dsoRunCtx* ctx, dsoRunEventKind kind,
                       const dsoRunState* st) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = kind;
  ev->task_kind = ctx->d ? ctx->d->kind : DSO_TASK_KIND_NONE;
  ev->max_iter = ctx->d ? ctx->d->max_iter : 0;
  ev->cost = NAN;
  for (int k = 0; k < 3; k++) {
    ev->term[k] = NAN;
    ev->part[k] = ctx->d ? ctx->d->parts[k] : "";
  }
  if (st && st->nrecord > 0) {
    const dsoRunRecord* r = &st->record[st->nrecord - 1];
    ev->iteration = r->iter;
    ev->cost = r->cost;
    for (int k = 0; k < 3; k++) ev->term[k] = r->term[k];
    ev->grad_norm = r->grad_norm;
    ev->lambda = r->lambda;
    ev->steps = r->steps;
  }
  if (st) ev->refused = st->refused;
  ev->text = "";
}

static void emit(dsoRunCtx* ctx, dsoRunEvent* ev, const char* text) {
  ev->text = text ? text : "";
  if (ctx->progress) ctx->progress(ev, ctx->user);
}

static void flush_notes(dsoRunCtx* ctx) {
  if (ctx->note.len == 0) return;
  dsoRunEvent ev;
  event_init(&ev, ctx, DSO_RUN_EVENT_NOTE, NULL);
  emit(ctx, &ev, ctx->note.s);
  text_reset(&ctx->note);
}

void dso_run_note(dsoRunCtx* ctx, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(&ctx->note, fmt, ap);
  va_end(ap);
}

void dso_run_warn(dsoRunCtx* ctx, const char* fmt, ...) {
  flush_notes(ctx);
  dsoRunText t = {0};
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(&t, fmt, ap);
  va_end(ap);
  dsoRunEvent ev;
  event_init(&ev, ctx, DSO_RUN_EVENT_WARNING, NULL);
  emit(ctx, &ev, t.s);
  dso_run_text_free(&t);
}

void dso_run_add_file(dsoRunCtx* ctx, const char* name) {
  dsoRunSummary* s = ctx->sum;
  if (!s) return;
  char path[4200];
  dso_run_join(path, sizeof(path), ctx->outdir, name);
  for (int k = 0; k < s->nfile; k++) {
    if (!strcmp(s->file[k], path)) return;
  }
  char** f = realloc(s->file, sizeof(char*) * (size_t)(s->nfile + 1));
  if (!f) return;
  s->file = f;
  size_t len = strlen(path) + 1;
  if ((f[s->nfile] = malloc(len)) != NULL) {
    memcpy(f[s->nfile++], path, len);
  }
}

dsoStatus dso_run_write_text(dsoRunCtx* ctx, const char* name, const char* text,
                             dsoError* err) {
  char file[4200];
  dso_run_join(file, sizeof(file), ctx->outdir, name);
  dsoStatus s = dso_write_file_atomic(file, text, strlen(text), err);
  if (!s) dso_run_add_file(ctx, name);
  return s;
}

// model.xml: the task's model file with the attributes θ binds edited in place (mjcf.h), checked
// to compile to the θ-written model, written atomically
dsoStatus dso_run_write_model(dsoRunCtx* ctx, const dsoTask* task, const dsoTheta* theta,
                              const double* u, dsoError* err) {
  char path[4200];
  dso_run_join(path, sizeof(path), ctx->outdir, "model.xml");
  for (int i = 0; i < theta->n; i++) {
    if (!isfinite(dso_theta_entry_natural(&theta->entry[i], u[i]))) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: theta entry %s is not finite; not written",
                       path, theta->entry[i].name);
    }
  }
  dsoStatus s = dso_mjcf_write(path, task->model_path, task->model, theta, u, err);
  if (!s) dso_run_add_file(ctx, "model.xml");
  return s;
}

void dso_run_table(dsoRunText* t, const dsoTheta* theta, const char* label, const double* u0,
                   const double* u, const double* ut, const double* se, const int* at_bound,
                   int truth) {
  int n = theta->n;
  dso_run_text_printf(t, "\n%-34s %s%14s %14s %18s%s\n", "entry", truth ? "          true" : "",
                      "initial", label, "+- se", truth ? "    error %" : "");
  for (int i = 0; i < n; i++) {
    const dsoThetaEntry* e = &theta->entry[i];
    if (e->block == DSO_BLOCK_POLICY && !truth && n > 24) {
      continue;  // long policy blocks are in result.json
    }
    char sebuf[32] = "-";
    if (at_bound && at_bound[i]) {
      snprintf(sebuf, sizeof(sebuf), "(at %s bound)", at_bound[i] < 0 ? "lower" : "upper");
    } else if (se && se[i] > 0 && isfinite(se[i])) {
      snprintf(sebuf, sizeof(sebuf), "%.3g", se[i]);
    }
    double vt = dso_theta_entry_natural(e, ut[i]), vf = dso_theta_entry_natural(e, u[i]);
    dso_run_text_printf(t, "%-34s ", e->name);
    if (truth) {
      dso_run_text_printf(t, "%14.6g ", vt);
    }
    dso_run_text_printf(t, "%14.6g %14.6g %18s", dso_theta_entry_natural(e, u0[i]), vf, sebuf);
    if (truth) {
      if (vt != 0) {
        dso_run_text_printf(t, "  %10.3g", 100 * (vf - vt) / fabs(vt));
      } else {
        dso_run_text_printf(t, "  %10s", "-");
      }
    }
    dso_run_text_printf(t, "%s\n", e->fixed ? "  (fixed)" : "");
  }
}

// ---- plots: gnuplot by fork/exec (no shell) in OUTDIR

// runs argv[0] (looked up in PATH) with argv in folder dir, standard streams on /dev/null, and
// waits: its exit status, 127 when it could not be started, 126 when dir could not be entered,
// -1 when it was killed
static int spawn_quiet(const char* dir, char* const argv[]) {
  pid_t pid = fork();
  if (pid < 0) {
    return 127;
  }
  if (pid == 0) {
    // the child: only async-signal-safe calls until exec
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    if (dir && chdir(dir) != 0) {
      _exit(126);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// s as a gnuplot single-quoted string: a quote doubled, control characters as '?' (gnuplot does
// no substitution inside single quotes, not even of backquotes)
static void gp_quoted(FILE* f, const char* s) {
  fputc('\'', f);
  for (; *s; s++) {
    if (*s == '\'') {
      fputs("''", f);
    } else {
      fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
    }
  }
  fputc('\'', f);
}

// runs OUTDIR/script with gnuplot in OUTDIR; silent when gnuplot is not installed, a warning
// when it fails
static void run_gnuplot(dsoRunCtx* ctx, const char* script, const char* png) {
  char* argv[3] = {"gnuplot", (char*)script, NULL};
  int st = spawn_quiet(ctx->outdir, argv);
  if (st == 0) {
    dso_run_add_file(ctx, png);
  } else if (st != 127) {
    dso_run_warn(ctx, "gnuplot %s failed (status %d); %s not written\n", script, st, png);
  }
}

static FILE* open_script(dsoRunCtx* ctx, const char* name) {
  char path[4200];
  dso_run_join(path, sizeof(path), ctx->outdir, name);
  FILE* f = fopen(path, "w");
  if (!f) {
    dso_run_warn(ctx, "%s: cannot write the plot script: %s\n", path, strerror(errno));
  }
  return f;
}

static int close_script(dsoRunCtx* ctx, FILE* f, const char* name) {
  if (fclose(f) != 0) {
    dso_run_warn(ctx, "%s/%s: cannot write the plot script\n", ctx->outdir, name);
    return -1;
  }
  dso_run_add_file(ctx, name);
  return 0;
}

static void plot_progress(dsoRunCtx* ctx) {
  if (!ctx->o->plots) return;
  FILE* f = open_script(ctx, "progress.gp");
  if (!f) {
    return;
  }
  fputs("# learning curve of dso run; re-plot with: gnuplot progress.gp (in this folder)\n"
        "set terminal png size 800,500 noenhanced\nset output 'progress.png'\n"
        "set datafile separator ','\nset logscale y\nset xlabel 'iteration'\n"
        "set ylabel 'cost'\n"
        "plot 'progress.csv' using 1:2 skip 1 with linespoints title 'J'\n", f);
  if (close_script(ctx, f, "progress.gp") == 0) {
    run_gnuplot(ctx, "progress.gp", "progress.png");
  }
}

void dso_run_plot_trajectories(dsoRunCtx* ctx, int ncol, const char* const* names) {
  if (!ctx->o->plots || ncol < 1) {
    return;
  }
  FILE* f = open_script(ctx, "trajectories.gp");
  if (!f) {
    return;
  }
  fprintf(f, "# recorded against simulated qpos of dso run; re-plot with: gnuplot trajectories.gp "
          "(in this folder)\n"
          "set terminal png size 900,%d noenhanced\nset output 'trajectories.png'\n"
          "set datafile separator ','\nset multiplot layout %d,1\n"
          "set xlabel 'sample (validation episodes in sequence)'\n"
          // brk(e, y): y, or undefined (which breaks the line) where the episode id e changes,
          // so that one episode's last sample is not joined to the next one's first
          "p = -1\nbrk(e, y) = (e != p ? (p = e, 1/0) : y)\n", 120 + 260 * ncol, ncol);
  for (int k = 0; k < ncol; k++) {
    int c = 3 + 3 * k;
    fputs("set title ", f);
    gp_quoted(f, names[k]);
    fprintf(f, "\nplot 'trajectories.csv' using 0:(brk($1,$%d)) skip 1 "
            "with lines lw 4 lc rgb '#a0a0a0' title 'recorded', '' using 0:(brk($1,$%d)) skip 1 "
            "with lines lc rgb '#d95f02' title 'initial theta', '' using 0:(brk($1,$%d)) skip 1 "
            "with lines dt 2 lw 2 lc rgb '#1b4f9c' title 'identified theta'\n", c, c + 1, c + 2);
  }
  fputs("unset multiplot\n", f);
  if (close_script(ctx, f, "trajectories.gp") == 0) {
    run_gnuplot(ctx, "trajectories.gp", "trajectories.png");
  }
}

// ---- options, summary

void dso_run_options_default(dsoRunOptions* o) {
  if (!o) return;
  memset(o, 0, sizeof(*o));
  o->max_iter = -1;
  o->plots = 1;
}

const char* dso_run_stop_name(dsoRunStop stop) {
  switch (stop) {
    case DSO_RUN_STOP_NONE: return "none";
    case DSO_RUN_STOP_MAX_ITER: return "max_iter";
    case DSO_RUN_STOP_CONVERGED: return "converged";
    case DSO_RUN_STOP_STALLED_AT_BOUND: return "stalled_at_bound";
    case DSO_RUN_STOP_NO_DECREASE: return "no_decrease";
    case DSO_RUN_STOP_INTERRUPTED: return "interrupted";
    case DSO_RUN_STOP_REFUSED: return "refused";
    case DSO_RUN_STOP_FAILED: return "failed";
  }
  return "unknown";
}

void dso_run_summary_clear(dsoRunSummary* s) {
  if (!s) return;
  free(s->theta);
  free(s->value);
  for (int k = 0; k < s->nfile; k++) free(s->file[k]);
  free(s->file);
  memset(s, 0, sizeof(*s));
  s->cost = NAN;
}

// the summary's figures from st
static void summarize(dsoRunSummary* s, const dsoRunDriver* d, const dsoRunState* st,
                      dsoRunStop stop) {
  if (!s) return;
  s->stop = stop;
  s->task_kind = d->kind;
  if (!st->u) return;
  s->iterations = st->nrecord ? st->record[st->nrecord - 1].iter : 0;
  s->cost = st->nrecord ? st->record[st->nrecord - 1].cost : NAN;
  s->refused = st->refused;
  if (!s->theta) {
    s->theta = calloc((size_t)st->n + 1, sizeof(double));
    s->value = calloc((size_t)st->n + 1, sizeof(double));
    if (!s->theta || !s->value) {
      free(s->theta);
      free(s->value);
      s->theta = s->value = NULL;
      return;
    }
  }
  s->ntheta = st->n;
  memcpy(s->theta, st->u, sizeof(double) * (size_t)st->n);
  for (int i = 0; i < st->n; i++) {
    s->value[i] = dso_theta_entry_natural(&d->theta->entry[i], st->u[i]);
  }
}

// ---- the loop

// the output files whose atomic writes may leave temporary files behind
static const char* const kOutputs[] = {"result.json", "progress.csv", "checkpoint.json",
                                       "model.xml", "trajectories.csv"};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int interrupted(const dsoRunCtx* ctx) {
  return ctx->o->interrupt && *ctx->o->interrupt != 0;
}

// progress.csv and checkpoint.json of st, atomically
static dsoStatus save(dsoRunCtx* ctx, const dsoRunState* st, dsoError* err) {
  if (dso_run_progress_write(ctx->progress_csv, st, ctx->d->parts, err) ||
      dso_run_checkpoint_write(ctx->checkpoint, ctx->d->theta, st, err)) {
    return err->code;
  }
  dso_run_add_file(ctx, "progress.csv");
  dso_run_add_file(ctx, "checkpoint.json");
  return DSO_OK;
}

// appends row r after checking that θ = st->u and r are finite, then saves
static dsoStatus record(dsoRunCtx* ctx, dsoRunState* st, const dsoRunRecord* r, dsoError* err) {
  dsoError e = {0};
  if (dso_run_check_finite(ctx->d->theta, st->u, r, ctx->d->parts, &e)) {
    if (st->nrecord == 0) {
      return dso_error(err, DSO_ERR_NUMERIC, "%s: %s at the initial theta; nothing written",
                       ctx->name, e.msg);
    }
    return dso_error(err, DSO_ERR_NUMERIC, "%s: iteration %d: %s; not recorded: progress.csv "
                     "and checkpoint.json hold iteration %d", ctx->name, r->iter, e.msg,
                     st->record[st->nrecord - 1].iter);
  }
  if (dso_run_state_record(st, r, err)) {
    return err->code;
  }
  return save(ctx, st, err);
}

// makes, locks and cleans the folder, reads the checkpoint with resume
static dsoStatus start(dsoRunCtx* ctx, dsoRunState* st, const double* u0, dsoError* err) {
  int removed = 0;
  if (dso_run_state_init(st, ctx->d->theta, u0, ctx->d->lambda, err) ||
      dso_mkdir_p(ctx->outdir, err) || dso_run_lock_acquire(&ctx->lock, ctx->outdir, err) ||
      dso_run_clean_temp(&removed, ctx->outdir, kOutputs,
                         (int)(sizeof(kOutputs) / sizeof(kOutputs[0])), err)) {
    return err->code;
  }
  if (removed > 0) {
    dso_run_warn(ctx, "removed %d temporary file%s an interrupted run left in %s\n", removed,
                 removed > 1 ? "s" : "", ctx->outdir);
  }
  if (ctx->o->resume) {
    if (access(ctx->checkpoint, R_OK) != 0) {
      return dso_error(err, DSO_ERR_INPUT, "--resume: %s does not exist", ctx->checkpoint);
    }
    if (dso_run_checkpoint_read(ctx->checkpoint, ctx->d->theta, st, err)) {
      return err->code;
    }
  }
  return DSO_OK;
}

// --values FILE.json: the task's initial values replaced by the file's
static dsoStatus start_from_values(dsoTask* task, const char* path, dsoError* err) {
  double* u = calloc((size_t)task->theta->n + 1, sizeof(double));
  if (!u) {
    return dso_error(err, DSO_ERR_MEMORY, "--values: out of memory");
  }
  dso_theta_init(task->theta, u);
  dsoStatus s = dso_values_read_file(task->theta, u, path, err);
  if (!s && (s = dso_theta_set_init(task->theta, u, err))) {
    dso_error_prefix(err, "%s: ", path);
  }
  free(u);
  return s;
}

static dsoStatus run_loop(dsoRunCtx* ctx, dsoRunState* st, const double* u0, double* opt,
                          dsoRunStop* stop, dsoError* err) {
  const dsoRunDriver* d = ctx->d;
  dsoStatus s;
  if ((s = start(ctx, st, u0, err))) {
    return s;
  }
  if (st->nopt && st->nopt != d->nopt) {
    return dso_error(err, DSO_ERR_INPUT, "--resume: %s holds %d optimizer values, expected %d "
                     "(a checkpoint of another task or version)", ctx->checkpoint, st->nopt,
                     d->nopt);
  }
  if ((s = d->ops->set_state(d->self, st->lambda, st->nopt ? st->opt : NULL, err))) {
    if (ctx->o->resume) {
      dso_error_prefix(err, "--resume: %s: ", ctx->checkpoint);
    }
    return s;
  }
  if (d->ops->evaluate && st->nrecord == 0) {
    dsoRunRecord r;
    memset(&r, 0, sizeof(r));
    if ((s = d->ops->evaluate(d->self, st->u, &r, err)) || (s = record(ctx, st, &r, err))) {
      return s;
    }
  }
  if (ctx->sum) {
    ctx->sum->first_iteration = st->nrecord ? st->record[st->nrecord - 1].iter : 0;
  }
  dsoRunEvent ev;
  event_init(&ev, ctx, DSO_RUN_EVENT_START, st);
  text_reset(&ctx->line);
  d->ops->header(d->self, &ctx->line);
  emit(ctx, &ev, ctx->line.s);

  double t0 = now_s();
  int start_iter = st->nrecord ? st->record[st->nrecord - 1].iter : 0;
  long steps0 = st->nrecord ? st->record[st->nrecord - 1].steps : 0;
  int refused_run = 0;  // refused steps in a row
  while (!st->done && (st->nrecord ? st->record[st->nrecord - 1].iter : 0) < d->max_iter) {
    if (interrupted(ctx)) {
      break;
    }
    const dsoRunRecord* last = st->nrecord ? &st->record[st->nrecord - 1] : NULL;
    int last_iter = last ? last->iter : 0;
    dsoRunRecord r;
    memset(&r, 0, sizeof(r));
    int done = 0, refused = DSO_RUN_STEP_OK;
    dsoError se = {0};
    s = d->ops->step(d->self, st->u, last, &r, &done, &refused, &se);
    if (s && refused) {
      // θ and the optimizer state kept, the batch skipped: the checkpoint holds the new count
      st->refused++;
      refused_run++;
      int first = st->nrecord == 0;
      if (d->nopt > 0) {
        double lam = 0;
        d->ops->get_state(d->self, &lam, opt);
        if (dso_run_state_set_opt(st, opt, d->nopt, err)) return err->code;
      }
      event_init(&ev, ctx, DSO_RUN_EVENT_REFUSED, st);
      ev.iteration = last_iter + 1;
      ev.refused_in_row = refused_run;
      text_reset(&ctx->line);
      dso_run_text_printf(&ctx->line, "iter %3d  step refused (%d in a row): %s\n",
                          last_iter + 1, refused_run, se.msg);
      emit(ctx, &ev, ctx->line.s);
      if ((s = save(ctx, st, err))) {
        return s;
      }
      if (first && refused == DSO_RUN_STEP_REFUSED_COST) {
        *stop = DSO_RUN_STOP_REFUSED;
        return dso_error(err, DSO_ERR_NUMERIC, "%s: the first batch, at the initial theta, is "
                         "refused: %s", ctx->name, se.msg);
      }
      if (refused_run >= DSO_RUN_MAX_REFUSED) {
        *stop = DSO_RUN_STOP_REFUSED;
        return dso_error(err, DSO_ERR_NUMERIC, "%s: %d steps in a row refused with %s (the "
                         "last: %s); theta stays at iteration %d in %s; result.json not written",
                         ctx->name, refused_run, d->refuse_setting, se.msg, last_iter,
                         ctx->checkpoint);
      }
      continue;
    }
    if (s) {
      return dso_error(err, s, "%s", se.msg);
    }
    refused_run = 0;
    st->done = done;
    d->ops->get_state(d->self, &st->lambda, opt);
    if (d->nopt > 0 && dso_run_state_set_opt(st, opt, d->nopt, err)) {
      return err->code;
    }
    if ((s = record(ctx, st, &r, err))) {
      return s;
    }
    double el = now_s() - t0;
    int it = r.iter - start_iter;
    event_init(&ev, ctx, DSO_RUN_EVENT_ITERATION, st);
    ev.done = done;
    ev.steps_per_s = el > 0 ? (r.steps - steps0) / el : 0;
    ev.eta = it > 0 ? el / it * (d->max_iter - r.iter) : 0;
    text_reset(&ctx->line);
    d->ops->iteration(d->self, &ctx->line, &r, done, ev.steps_per_s, ev.eta);
    emit(ctx, &ev, ctx->line.s);
  }
  if (interrupted(ctx)) {
    *stop = DSO_RUN_STOP_INTERRUPTED;
    event_init(&ev, ctx, DSO_RUN_EVENT_INTERRUPTED, st);
    text_reset(&ctx->line);
    dso_run_text_printf(&ctx->line, "interrupted after iteration %d\n", ev.iteration);
    emit(ctx, &ev, ctx->line.s);
    return DSO_OK;
  }
  // the final outputs (progress.csv and checkpoint.json are current)
  dsoError fe = {0};
  if (dso_run_check_finite(d->theta, st->u, st->nrecord ? &st->record[st->nrecord - 1] : NULL,
                           d->parts, &fe)) {
    return dso_error(err, DSO_ERR_NUMERIC, "%s: %s; result.json and model.xml not written",
                     ctx->name, fe.msg);
  }
  *stop = d->ops->stop(d->self, st->done);
  dsoRunText wrote = {0};
  s = d->ops->report(d->self, ctx, u0, st, &wrote, err);
  flush_notes(ctx);
  if (!s) {
    plot_progress(ctx);
    summarize(ctx->sum, d, st, *stop);
    event_init(&ev, ctx, DSO_RUN_EVENT_RESULT, st);
    emit(ctx, &ev, wrote.s);
  }
  dso_run_text_free(&wrote);
  return s;
}

dsoStatus dso_run_task(dsoTask* task, const char* outdir, const dsoRunOptions* options,
                       dsoRunProgressFn progress, void* user, dsoRunSummary* summary,
                       dsoError* err) {
  dsoError local = {0};
  dsoError* e = err ? err : &local;
  dso_error_clear(e);
  if (summary) {
    memset(summary, 0, sizeof(*summary));
    summary->cost = NAN;
  }
  if (!task) {
    return dso_error(e, DSO_ERR_INPUT, "dso_run_task: task is NULL (expected a loaded task)");
  }
  if (!outdir || !outdir[0]) {
    return dso_error(e, DSO_ERR_INPUT, "dso_run_task: %s: outdir is %s (expected a folder)",
                     task->path, outdir ? "empty" : "NULL");
  }
  dsoRunOptions o;
  if (options) {
    o = *options;
  } else {
    dso_run_options_default(&o);
  }
  if (o.max_iter < -1) {
    return dso_error(e, DSO_ERR_INPUT, "dso_run_task: options.max_iter is %d (expected >= 0, "
                     "or -1 for the task's)", o.max_iter);
  }
  const char* name = o.name ? o.name : task->path;
  if (o.values && start_from_values(task, o.values, e)) {
    return e->code;
  }
  int kind = dso_task_kind(task, NULL);
  if (o.truth && kind != DSO_TASK_KIND_FIT) {
    return dso_error(e, DSO_ERR_INPUT, "%s: truth values apply to fits to recorded data", name);
  }
  dsoRunDriver d;
  memset(&d, 0, sizeof(d));
  dsoStatus s;
  switch (kind) {
    case DSO_TASK_KIND_ESTIMATOR: s = dso_run_estim_driver(&d, task, &o, name, e); break;
    case DSO_TASK_KIND_CHAIN: s = dso_run_train_driver(&d, task, &o, name, e); break;
    case DSO_TASK_KIND_FIT: s = dso_run_fit_driver(&d, task, &o, name, e); break;
    default:
      s = dso_error(e, DSO_ERR_INPUT, "%s: nothing to optimize: the task has neither a \"data\" "
                    "section (fits) nor a \"cost\" section (chain optimization)", name);
  }
  if (s) {
    if (summary) summary->stop = DSO_RUN_STOP_FAILED;
    return s;
  }
  if (summary) summary->task_kind = d.kind;
  dsoRunCtx ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.outdir = outdir;
  ctx.name = name;
  ctx.o = &o;
  ctx.d = &d;
  ctx.progress = progress;
  ctx.user = user;
  ctx.sum = summary;
  ctx.lock = -1;
  dso_run_join(ctx.checkpoint, sizeof(ctx.checkpoint), outdir, "checkpoint.json");
  dso_run_join(ctx.progress_csv, sizeof(ctx.progress_csv), outdir, "progress.csv");
  int n = d.theta->n;
  double* u0 = calloc((size_t)n + 1, sizeof(double));
  double* opt = calloc((size_t)d.nopt + 1, sizeof(double));
  dsoRunState st;
  memset(&st, 0, sizeof(st));
  dsoRunStop stop = DSO_RUN_STOP_FAILED;
  if (!u0 || !opt) {
    s = dso_error(e, DSO_ERR_MEMORY, "run: out of memory");
  } else {
    d.ops->init(d.self, u0);
    s = run_loop(&ctx, &st, u0, opt, &stop, e);
  }
  flush_notes(&ctx);
  if (s && stop != DSO_RUN_STOP_REFUSED) stop = DSO_RUN_STOP_FAILED;
  if (s || stop == DSO_RUN_STOP_INTERRUPTED) summarize(summary, &d, &st, stop);
  dso_run_lock_release(ctx.lock);
  dso_run_text_free(&ctx.note);
  dso_run_text_free(&ctx.line);
  dso_run_state_clear(&st);
  d.ops->destroy(d.self);
  free(u0);
  free(opt);
  return s;
}
