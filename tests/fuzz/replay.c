// Runs a libFuzzer harness without libFuzzer: every file named on the command line, and every
// file inside a named folder, is passed once to LLVMFuzzerTestOneInput. The normal build runs the
// seed corpora (tests/fuzz/corpus/<target>/, which also hold the reproducers of fixed crashes)
// this way under ctest, with gcc and under ASan/UBSan.
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// runs one file; returns 0, or 1 when it cannot be read
static int run_file(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 1;
  }
  size_t cap = 4096, n = 0;
  uint8_t* buf = (uint8_t*)malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t* grown = (uint8_t*)realloc(buf, 2 * cap);
      if (!grown) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "replay: out of memory reading %s\n", path);
    return 1;
  }
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  return 0;
}

static int cmp_names(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

// runs the files of folder dir in name order; *count gets the number run
static int run_dir(const char* dir, int* count) {
  DIR* d = opendir(dir);
  if (!d) {
    fprintf(stderr, "replay: cannot open folder %s\n", dir);
    return 1;
  }
  int n = 0, cap = 64, bad = 0;
  char** names = (char**)malloc(sizeof(char*) * (size_t)cap);
  struct dirent* e;
  while (names && (e = readdir(d))) {
    if (e->d_name[0] == '.') {
      continue;
    }
    if (n == cap) {
      char** grown = (char**)realloc(names, sizeof(char*) * (size_t)cap * 2);
      if (!grown) {
        bad = 1;
        break;
      }
      names = grown;
      cap *= 2;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    names[n] = (char*)malloc(len);
    if (!names[n]) {
      bad = 1;
      break;
    }
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (!names) {
    return 1;
  }
  qsort(names, (size_t)n, sizeof(char*), cmp_names);
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (!bad && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      bad |= run_file(names[i]);
      (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return bad;
}

int main(int argc, char** argv) {
  int bad = 0, count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      bad |= run_dir(argv[i], &count);
    } else {
      bad |= run_file(argv[i]);
      count++;
    }
  }
  printf("replay: %d input%s run%s\n", count, count == 1 ? "" : "s", bad ? ", some unreadable" : "");
  return bad || count == 0 ? 1 : 0;
}
