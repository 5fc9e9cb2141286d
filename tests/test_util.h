// Test helpers shared by the test programs: scratch folders under the build folder (tests never
// write into the source tree or elsewhere), their removal without a shell, and running the dso
// program with fork/execv (no shell: arguments are split here, single or double quotes group
// words). Header-only: include after <cmocka.h>, in a file that defines _POSIX_C_SOURCE 200809L
// before its first include.
#ifndef DSO_TEST_UTIL_H
#define DSO_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

// Creates a fresh folder DSO_BUILD_DIR/test-output/<name>_XXXXXX into buf (len bytes).
// Returns 0 on success, -1 on failure.
static inline int dso_test_mkdtemp(char* buf, size_t len, const char* name) {
  char base[2048];
  snprintf(base, sizeof(base), "%s/test-output", DSO_BUILD_DIR);
  if (mkdir(base, 0755) != 0 && errno != EEXIST) {
    return -1;
  }
  if ((size_t)snprintf(buf, len, "%s/%s_XXXXXX", base, name) >= len) {
    fprintf(stderr, "test: the scratch folder name under %s does not fit %zu bytes\n", base, len);
    return -1;
  }
  return mkdtemp(buf) ? 0 : -1;
}

// Writes the path of a new empty file DSO_BUILD_DIR/test-output/<name>_XXXXXX into buf (len
// bytes). Returns 0 on success, -1 on failure.
static inline int dso_test_mkstemp(char* buf, size_t len, const char* name) {
  char base[2048];
  snprintf(base, sizeof(base), "%s/test-output", DSO_BUILD_DIR);
  if (mkdir(base, 0755) != 0 && errno != EEXIST) {
    return -1;
  }
  if ((size_t)snprintf(buf, len, "%s/%s_XXXXXX", base, name) >= len) {
    return -1;
  }
  int fd = mkstemp(buf);
  if (fd < 0) {
    return -1;
  }
  close(fd);
  return 0;
}

// Creates a new file DSO_BUILD_DIR/test-output/<name>_<pid>_<k><suffix> (k counts the calls of
// this process), its path in buf (len bytes), and returns its descriptor open for reading and writing (-1 on
// failure).
static inline int dso_test_mkstemps(char* buf, size_t len, const char* name, const char* suffix) {
  static int k = 0;
  char base[2048];
  snprintf(base, sizeof(base), "%s/test-output", DSO_BUILD_DIR);
  if (mkdir(base, 0755) != 0 && errno != EEXIST) {
    return -1;
  }
  if ((size_t)snprintf(buf, len, "%s/%s_%ld_%d%s", base, name, (long)getpid(), k++, suffix) >=
      len) {
    return -1;
  }
  return open(buf, O_RDWR | O_CREAT | O_EXCL, 0644);
}

// Removes path: a file, or a folder and everything in it (no shell, symbolic links not
// followed). Returns 0 on success.
static inline int dso_test_rmtree(const char* path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) {
    return -1;
  }
  if (S_ISDIR(sb.st_mode)) {
    DIR* d = opendir(path);
    if (!d) {
      return -1;
    }
    struct dirent* e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
        continue;
      }
      char sub[4096];
      snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
      rc |= dso_test_rmtree(sub);
    }
    closedir(d);
    return rc | (rmdir(path) != 0 ? -1 : 0);
  }
  return remove(path) != 0 ? -1 : 0;
}

// Splits a command line into at most max - 1 words (argv NULL-terminated) in place: words are
// separated by blanks; '...' and "..." group blanks into a word. Returns the word count.
static inline int dso_test_split(char* line, char** argv, int max) {
  int n = 0;
  char* r = line;
  while (*r && n < max - 1) {
    while (*r == ' ' || *r == '\t' || *r == '\n') r++;
    if (!*r) break;
    char* w = r;  // the word is written over the line, quotes removed
    argv[n++] = w;
    char q = 0;
    while (*r && (q || (*r != ' ' && *r != '\t' && *r != '\n'))) {
      if (!q && (*r == '\'' || *r == '"')) {
        q = *r++;
      } else if (q && *r == q) {
        q = 0;
        r++;
      } else {
        *w++ = *r++;
      }
    }
    if (*r) r++;
    *w = '\0';
  }
  argv[n] = NULL;
  return n;
}

// Runs program argv[0] with argv in folder cwd (NULL: the current one), standard output and error
// to the files out and err (NULL: /dev/null). Returns its exit status, -1 if it did not exit.
static inline int dso_test_spawn(char* const* argv, const char* cwd, const char* out,
                                 const char* err) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    return -1;
  }
  if (pid == 0) {
    int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0 || dup2(fi, 0) < 0 ||
        (cwd && chdir(cwd) != 0)) {
      _exit(127);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif  // DSO_TEST_UTIL_H
