// Multiple-shooting evaluation of parameter values on recorded data, per window length and per
// recorded channel (see evaluate.h; the JSON output is evaluate_json.c).
#define _POSIX_C_SOURCE 200809L  // strdup
#include "apps/evaluate.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mujoco/mj.h"
#include "mujoco/sim.h"

struct dsoEval_ {
  const mjModel* m;
  const dsoTheta* theta;
  const dsoDataset* data;
  dsoEvalSettings set;
  dsoSim* sim;
  double** qvel;       // (nepisode) window-start velocities (T x nv) of evaluated episodes
  int nepisode;
  int* episode;        // (nepisode)
  long* episode_id;    // (nepisode) their ids
  int nchannel;
  char** channel;      // (nchannel)
  int* group;          // (nchannel)
  int* index;          // (nchannel)
  double* y;           // (nsensordata) simulated measurement
  double* wsum;        // (nchannel) squared errors of the current window
  double* sum;         // (nwindow x nchannel) squared errors of scored windows
  double* rms;         // (nwindow x nchannel)
  long* nwin;          // (nwindow)
  long* ndiv;          // (nwindow)
  long* nstep;         // (nwindow)
  int has_sensor;
  long steps;
};

void dso_eval_settings_default(dsoEvalSettings* s) {
  static const int kDefault[] = {1, 10, 50, 100, 200, DSO_EVAL_WHOLE};
  memset(s, 0, sizeof(*s));
  s->nwindow = (int)(sizeof(kDefault) / sizeof(kDefault[0]));
  memcpy(s->window, kDefault, sizeof(kDefault));
  s->all_episodes = 0;
}

// checks the window list of s: count, values, duplicates
static dsoStatus check_windows(const dsoEvalSettings* s, const char* source, dsoError* err) {
  if (s->nwindow < 1 || s->nwindow > DSO_EVAL_MAX_WINDOWS) {
    return dso_error(err, DSO_ERR_INPUT, "%s: %d window lengths, expected 1 to %d", source,
                     s->nwindow, DSO_EVAL_MAX_WINDOWS);
  }
  for (int i = 0; i < s->nwindow; i++) {
    if (s->window[i] < 0) {
      return dso_error(err, DSO_ERR_INPUT, "%s: window %d is %d steps, expected >= 1 or whole",
                       source, i, s->window[i]);
    }
    for (int j = 0; j < i; j++) {
      if (s->window[j] == s->window[i]) {
        return dso_error(err, DSO_ERR_INPUT, "%s: window length %d is listed twice", source,
                         s->window[i]);
      }
    }
  }
  return DSO_OK;
}

dsoStatus dso_eval_parse_windows(dsoEvalSettings* s, const char* list, const char* source,
                                 dsoError* err) {
  source = source ? source : "windows";
  if (!s || !list || !list[0]) {
    return dso_error(err, DSO_ERR_INPUT, "%s: expected a list of window lengths such as "
                     "1,10,100,whole", source);
  }
  dsoEvalSettings t = *s;
  t.nwindow = 0;
  const char* p = list;
  for (int i = 0;; i++) {
    const char* end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[32];
    if (len == 0 || len >= sizeof(item)) {
      return dso_error(err, DSO_ERR_INPUT, "%s: entry %d of \"%s\" is %s; expected an integer "
                       ">= 1 or whole", source, i + 1, list, len ? "too long" : "empty");
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (t.nwindow == DSO_EVAL_MAX_WINDOWS) {
      return dso_error(err, DSO_ERR_INPUT, "%s: more than %d window lengths", source,
                       DSO_EVAL_MAX_WINDOWS);
    }
    if (!strcmp(item, "whole") || !strcmp(item, "all")) {
      t.window[t.nwindow++] = DSO_EVAL_WHOLE;
    } else {
      char* stop = NULL;
      long v = strtol(item, &stop, 10);
      if (stop == item || *stop || v < 0 || v > INT_MAX / 2) {
        return dso_error(err, DSO_ERR_INPUT, "%s: entry %d \"%s\": expected an integer number of "
                         "steps >= 1 or whole", source, i + 1, item);
      }
      t.window[t.nwindow++] = (int)v;
    }
    if (!end) {
      break;
    }
    p = end + 1;
  }
  if (check_windows(&t, source, err)) {
    return err->code;
  }
  *s = t;
  return DSO_OK;
}

void dso_eval_free(dsoEval* ev) {
  if (!ev) {
    return;
  }
  for (int e = 0; ev->qvel && e < ev->nepisode; e++) {
    free(ev->qvel[e]);
  }
  for (int c = 0; ev->channel && c < ev->nchannel; c++) {
    free(ev->channel[c]);
  }
  dso_sim_free(ev->sim);
  free(ev->qvel);
  free(ev->episode);
  free(ev->episode_id);
  free(ev->channel);
  free(ev->group);
  free(ev->index);
  free(ev->y);
  free(ev->wsum);
  free(ev->sum);
  free(ev->rms);
  free(ev->nwin);
  free(ev->ndiv);
  free(ev->nstep);
  free(ev);
}

dsoEval* dso_eval_create(const mjModel* m, const dsoTheta* theta, const dsoDataset* data,
                         const dsoEvalSettings* s, dsoError* err) {
  dsoEvalSettings set;
  if (s) {
    set = *s;
  } else {
    dso_eval_settings_default(&set);
  }
  if (!m || !theta || !data) {
    dso_error(err, DSO_ERR_INPUT, "evaluate: model, theta and data are required");
    return NULL;
  }
  if (check_windows(&set, "evaluate", err)) {
    return NULL;
  }
  if (data->nq != m->nq || data->nv != m->nv || data->nu != m->nu ||
      data->nsensordata != m->nsensordata) {
    dso_error(err, DSO_ERR_INPUT,
              "evaluate: the dataset was made for a model with nq %d, nv %d, nu %d, nsensordata "
              "%d; this model has %d, %d, %d, %d", data->nq, data->nv, data->nu,
              data->nsensordata, m->nq, m->nv, m->nu, m->nsensordata);
    return NULL;
  }
  if (!(fabs(data->dt - m->opt.timestep) <= 1e-9 * m->opt.timestep)) {
    dso_error(err, DSO_ERR_INPUT,
              "evaluate: the dataset's sample spacing is %g s, expected the model timestep %g s "
              "(read it with \"resample\": true and stride 1)", data->dt, m->opt.timestep);
    return NULL;
  }
  int nep = data->nepisode, nval = dso_dataset_nvalidation(data);
  if (nep < 1) {
    dso_error(err, DSO_ERR_INPUT, "evaluate: the dataset has no episodes");
    return NULL;
  }
  dsoEval* ev = (dsoEval*)calloc(1, sizeof(dsoEval));
  if (!ev) {
    dso_error(err, DSO_ERR_MEMORY, "evaluate: out of memory");
    return NULL;
  }
  ev->m = m;
  ev->theta = theta;
  ev->data = data;
  ev->set = set;
  int nq = m->nq, nv = m->nv, ns = m->nsensordata, W = set.nwindow;
  int all = set.all_episodes || nval == 0;
  ev->nepisode = all ? nep : nval;
  ev->episode = (int*)calloc((size_t)ev->nepisode, sizeof(int));
  ev->episode_id = (long*)calloc((size_t)ev->nepisode, sizeof(long));
  ev->qvel = (double**)calloc((size_t)ev->nepisode, sizeof(double*));
  int nc = 0;
  for (int g = 0; g < DSO_NDATA; g++) {
    int size = g == DSO_DATA_QPOS ? nq : g == DSO_DATA_QVEL ? nv : g == DSO_DATA_SENSOR ? ns : 0;
    for (int i = 0; i < size; i++) {
      nc += data->has[g][i] != 0;
    }
  }
  if (nc == 0) {
    dso_error(err, DSO_ERR_INPUT,
              "evaluate: the dataset records no qpos, qvel or sensor column to compare with");
    dso_eval_free(ev);
    return NULL;
  }
  ev->channel = (char**)calloc((size_t)nc, sizeof(char*));
  ev->group = (int*)calloc((size_t)nc, sizeof(int));
  ev->index = (int*)calloc((size_t)nc, sizeof(int));
  ev->y = (double*)calloc((size_t)ns + 1, sizeof(double));
  ev->wsum = (double*)calloc((size_t)nc, sizeof(double));
  ev->sum = (double*)calloc((size_t)W * nc, sizeof(double));
  ev->rms = (double*)calloc((size_t)W * nc, sizeof(double));
  ev->nwin = (long*)calloc((size_t)W, sizeof(long));
  ev->ndiv = (long*)calloc((size_t)W, sizeof(long));
  ev->nstep = (long*)calloc((size_t)W, sizeof(long));
  double* work = (double*)calloc((size_t)nv + 1, sizeof(double));
  if (!ev->episode || !ev->episode_id || !ev->qvel || !ev->channel || !ev->group || !ev->index ||
      !ev->y || !ev->wsum || !ev->sum || !ev->rms || !ev->nwin || !ev->ndiv || !ev->nstep ||
      !work) {
    free(work);
    dso_eval_free(ev);
    dso_error(err, DSO_ERR_MEMORY, "evaluate: out of memory");
    return NULL;
  }
  for (int g = 0; g < DSO_NDATA; g++) {
    int size = g == DSO_DATA_QPOS ? nq : g == DSO_DATA_QVEL ? nv : g == DSO_DATA_SENSOR ? ns : 0;
    for (int i = 0; i < size; i++) {
      if (!data->has[g][i]) {
        continue;
      }
      char name[300];
      dso_dataset_column_name(name, sizeof(name), m, (dsoDataGroup)g, i);
      ev->group[ev->nchannel] = g;
      ev->index[ev->nchannel] = i;
      ev->channel[ev->nchannel] = strdup(name);
      if (!ev->channel[ev->nchannel++]) {
        free(work);
        dso_eval_free(ev);
        dso_error(err, DSO_ERR_MEMORY, "evaluate: out of memory");
        return NULL;
      }
      ev->has_sensor |= g == DSO_DATA_SENSOR;
    }
  }
  int k = 0;
  for (int e = 0; e < nep; e++) {
    if (!all && !data->episode[e].validation) {
      continue;
    }
    ev->episode[k] = e;
    ev->episode_id[k] = data->episode[e].id;
    ev->qvel[k] = (double*)calloc((size_t)data->episode[e].T * nv + 1, sizeof(double));
    if (!ev->qvel[k] ||
        dso_dataset_episode_qvel(ev->qvel[k], work, m, data, e, err) != DSO_OK) {
      free(work);
      if (!ev->qvel[k]) {
        dso_error(err, DSO_ERR_MEMORY, "evaluate: out of memory");
      }
      dso_eval_free(ev);
      return NULL;
    }
    k++;
  }
  free(work);
  ev->sim = dso_sim_create(m, err);
  if (!ev->sim) {
    dso_eval_free(ev);
    return NULL;
  }
  // as the fit: no warm start, so that a window does not depend on what ran before it
  dso_sim_model(ev->sim)->opt.disableflags |= mjDSBL_WARMSTART;
  for (int i = 0; i < W * nc; i++) {
    ev->rms[i] = NAN;
  }
  return ev;
}

// runs one window of len steps from sample start of evaluated episode k; adds the squared errors
// into ev->wsum (zeroed here); returns 0, or 1 when the window diverged
static int run_window(dsoEval* ev, int k, int start, int len) {
  dsoSim* sim = ev->sim;
  const mjModel* m = dso_sim_model(sim);
  mjData* d = dso_sim_data(sim);
  const dsoEpisode* ep = &ev->data->episode[ev->episode[k]];
  int nq = m->nq, nv = m->nv, nu = m->nu, ns = m->nsensordata;
  for (int c = 0; c < ev->nchannel; c++) {
    ev->wsum[c] = 0;
  }
  // the recorded state, as the fit sets it (fit.c)
  dso_sim_set_recorded(sim, ep->time[start], ep->qpos + (size_t)start * nq,
                       ev->qvel[k] + (size_t)start * nv, ep->ctrl + (size_t)start * nu);
  for (int j = 1; j <= len; j++) {
    int t = start + j;
    mju_copy(d->ctrl, ep->ctrl + (size_t)(t - 1) * nu, nu);
    dsoError e = {0};
    dsoStatus st = dso_sim_step(sim, &e);  // a bad warning or non-finite state is an error
    ev->steps++;
    if (st != DSO_OK) {
      return 1;
    }
    if (ev->has_sensor) {
      mju_copy(d->ctrl, ep->ctrl + (size_t)t * nu, nu);
      if (dso_sim_forward(sim, &e) != DSO_OK) {
        return 1;
      }
      dso_sim_measure(sim, ev->y);
    }
    const double* qp = ep->qpos + (size_t)t * nq;
    const double* qv = ep->qvel + (size_t)t * nv;
    const double* yr = ep->sensordata + (size_t)t * ns;
    for (int c = 0; c < ev->nchannel; c++) {
      int i = ev->index[c];
      double diff = ev->group[c] == DSO_DATA_QPOS   ? d->qpos[i] - qp[i]
                    : ev->group[c] == DSO_DATA_QVEL ? d->qvel[i] - qv[i]
                                                    : ev->y[i] - yr[i];
      if (!isfinite(diff)) {
        return 1;
      }
      ev->wsum[c] += diff * diff;
    }
  }
  return 0;
}

dsoStatus dso_eval_run(dsoEval* ev, const double* u, dsoError* err) {
  if (!ev || !u) {
    return dso_error(err, DSO_ERR_INPUT, "evaluate: no evaluation or values");
  }
  const dsoTheta* th = ev->theta;
  for (int i = 0; i < th->n; i++) {
    if (!isfinite(u[i])) {
      return dso_error(err, DSO_ERR_INPUT, "evaluate: %s: the value is not finite",
                       th->entry[i].name);
    }
  }
  dsoError e = {0};
  if (dso_sim_write(ev->sim, th, u, &e)) {
    return dso_error(err, e.code, "evaluate: %s", e.msg);
  }
  int W = ev->set.nwindow, nc = ev->nchannel;
  ev->steps = 0;
  for (int w = 0; w < W; w++) {
    double* sum = ev->sum + (size_t)w * nc;
    for (int c = 0; c < nc; c++) {
      sum[c] = 0;
    }
    ev->nwin[w] = ev->ndiv[w] = ev->nstep[w] = 0;
    for (int k = 0; k < ev->nepisode; k++) {
      int T = ev->data->episode[ev->episode[k]].T;
      int L = ev->set.window[w] == DSO_EVAL_WHOLE ? T - 1 : ev->set.window[w];
      for (int start = 0; L >= 1 && start + L <= T - 1; start += L) {
        if (run_window(ev, k, start, L)) {
          ev->ndiv[w]++;
          continue;
        }
        for (int c = 0; c < nc; c++) {
          sum[c] += ev->wsum[c];
        }
        ev->nwin[w]++;
        ev->nstep[w] += L;
      }
    }
    for (int c = 0; c < nc; c++) {
      ev->rms[(size_t)w * nc + c] = ev->nstep[w] > 0 ? sqrt(sum[c] / ev->nstep[w]) : NAN;
    }
  }
  return DSO_OK;
}

void dso_eval_result(const dsoEval* ev, dsoEvalResult* out) {
  memset(out, 0, sizeof(*out));
  if (!ev) {
    return;
  }
  out->nchannel = ev->nchannel;
  out->channel = (const char* const*)ev->channel;
  out->group = ev->group;
  out->index = ev->index;
  out->nwindow = ev->set.nwindow;
  out->window = ev->set.window;
  out->rms = ev->rms;
  out->nwin = ev->nwin;
  out->ndiverged = ev->ndiv;
  out->nstep = ev->nstep;
  out->nepisode = ev->nepisode;
  out->episode = ev->episode;
  out->episode_id = ev->episode_id;
  out->steps = ev->steps;
}
