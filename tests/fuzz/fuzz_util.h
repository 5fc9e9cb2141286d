// Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a private temporary folder
// under the build folder for the files a harness must hand to the library by path, removed again
// at exit. Harnesses are test programs: they may abort() on a broken invariant, which libFuzzer
// reports as a crash together with the input.
#ifndef DSO_FUZZ_UTIL_H
#define DSO_FUZZ_UTIL_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_MAX_PATHS 64
#define FUZZ_PATH_LEN 1024

// The paths made under the temporary folder, removed in reverse order at exit (folder first).
static char g_fuzz_paths[FUZZ_MAX_PATHS][FUZZ_PATH_LEN];
static int g_fuzz_npath;
static char g_fuzz_dir[FUZZ_PATH_LEN];

static inline void fuzz_cleanup(void) {
  for (int i = g_fuzz_npath - 1; i >= 0; i--) {
    remove(g_fuzz_paths[i]);
  }
  g_fuzz_npath = 0;
}

// remembers path (made by the caller) for removal at exit
static inline void fuzz_track(const char* path) {
  if (g_fuzz_npath < FUZZ_MAX_PATHS) {
    snprintf(g_fuzz_paths[g_fuzz_npath++], FUZZ_PATH_LEN, "%s", path);
  }
}

// makes DSO_BUILD_DIR/fuzz-tmp/<name>-XXXXXX (one per process, so that parallel fuzzing jobs do
// not share files) and returns it; aborts when it cannot
static inline const char* fuzz_tmp_dir(const char* name) {
  if (g_fuzz_dir[0]) {
    return g_fuzz_dir;
  }
  char base[FUZZ_PATH_LEN];
  snprintf(base, sizeof(base), "%s/fuzz-tmp", DSO_BUILD_DIR);
  if (mkdir(base, 0777) != 0 && access(base, W_OK) != 0) {
    fprintf(stderr, "fuzz: cannot make %s\n", base);
    abort();
  }
  snprintf(g_fuzz_dir, sizeof(g_fuzz_dir), "%s/%s-XXXXXX", base, name);
  if (!mkdtemp(g_fuzz_dir)) {
    fprintf(stderr, "fuzz: cannot make a folder under %s\n", base);
    abort();
  }
  fuzz_track(g_fuzz_dir);
  atexit(fuzz_cleanup);
  return g_fuzz_dir;
}

// path of name inside the temporary folder (made by fuzz_tmp_dir), tracked for removal
static inline void fuzz_tmp_path(char* buf, size_t len, const char* name) {
  snprintf(buf, len, "%s/%s", g_fuzz_dir, name);
  for (int i = 0; i < g_fuzz_npath; i++) {
    if (!strcmp(g_fuzz_paths[i], buf)) {
      return;
    }
  }
  fuzz_track(buf);
}

// writes len bytes to path (truncating it); aborts when it cannot
static inline void fuzz_write(const char* path, const void* data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) {
    fprintf(stderr, "fuzz: cannot write %s\n", path);
    abort();
  }
  const char* p = (const char*)data;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w <= 0) {
      fprintf(stderr, "fuzz: cannot write %s\n", path);
      abort();
    }
    p += w;
    len -= (size_t)w;
  }
  close(fd);
}

// an in-memory file (memfd) named by path "/proc/self/fd/<n>", which the library opens like any
// other file: refilled with fuzz_fill for every input, it spares the disk writes a file in the
// build folder costs (they took half of the CPU time of a CSV input). Aborts when it cannot.
static inline int fuzz_memfile(char* path, size_t len, const char* name) {
  int fd = memfd_create(name, 0);
  if (fd < 0) {
    fprintf(stderr, "fuzz: memfd_create failed\n");
    abort();
  }
  snprintf(path, len, "/proc/self/fd/%d", fd);
  return fd;
}

// replaces the contents of the memfd fd with len bytes of data; aborts when it cannot
static inline void fuzz_fill(int fd, const void* data, size_t len) {
  if (ftruncate(fd, 0) != 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len)) {
    fprintf(stderr, "fuzz: cannot fill the in-memory file\n");
    abort();
  }
}

// a NUL-terminated copy of the input (malloc'ed); aborts when out of memory
static inline char* fuzz_text(const uint8_t* data, size_t size) {
  char* s = (char*)malloc(size + 1);
  if (!s) {
    abort();
  }
  if (size) {
    memcpy(s, data, size);
  }
  s[size] = '\0';
  return s;
}

// with DSO_FUZZ_VERBOSE set, prints the outcome of each input (for looking over a corpus)
static inline void fuzz_report(const char* msg) {
  static int verbose = -1;
  if (verbose < 0) {
    verbose = getenv("DSO_FUZZ_VERBOSE") != NULL;
  }
  if (verbose) {
    fprintf(stderr, "%s\n", msg && msg[0] ? msg : "ok");
  }
}

// aborts with msg on stderr when cond is false (a broken invariant of the library)
#define FUZZ_CHECK(cond, ...)                              \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "fuzz: invariant broken: " __VA_ARGS__); \
      fprintf(stderr, "\n");                               \
      abort();                                             \
    }                                                      \
  } while (0)

// libFuzzer's entry point, also called by the corpus replay program (replay.c)
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // DSO_FUZZ_UTIL_H
