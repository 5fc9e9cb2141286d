// Atomic file output: contents replaced whole, failures leave the old file and no temporary file
// behind, abort keeps the original, and mkdir -p. Checked input: only regular files are read, a
// FIFO or a folder is refused at once (no blocking read), sizes are capped.
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_util.h"

#include "core/io.h"
#include "config/json.h"

// a fresh folder under the build folder for one test
static void make_dir(char* dir, size_t len, const char* tag) {
  char name[128];
  snprintf(name, sizeof(name), "dso_test_io_%s", tag);
  assert_int_equal(dso_test_mkdtemp(dir, len, name), 0);
}

// number of entries in a folder besides . and ..
static int count_entries(const char* dir) {
  DIR* d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent* e; (e = readdir(d));) {
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  }
  closedir(d);
  return n;
}

static void read_back(char* buf, size_t len, const char* path) {
  FILE* f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static void remove_tree(const char* dir) {
  DIR* d = opendir(dir);
  if (!d) {
    return;
  }
  for (struct dirent* e; (e = readdir(d));) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      char path[512];
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      struct stat st;
      if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        remove_tree(path);
      } else {
        remove(path);
      }
    }
  }
  closedir(d);
  dso_test_rmtree(dir);
}

static void test_replace(void** state) {
  char dir[1024], path[1200], buf[256];
  make_dir(dir, sizeof(dir), "replace");
  snprintf(path, sizeof(path), "%s/out.txt", dir);
  dsoError err = {0};
  assert_int_equal(dso_write_file_atomic(path, "first version\n", 14, &err), DSO_OK);
  read_back(buf, sizeof(buf), path);
  assert_string_equal(buf, "first version\n");
  assert_int_equal(dso_write_file_atomic(path, "second\n", 7, &err), DSO_OK);
  read_back(buf, sizeof(buf), path);
  assert_string_equal(buf, "second\n");
  // an empty write gives an empty file
  assert_int_equal(dso_write_file_atomic(path, NULL, 0, &err), DSO_OK);
  read_back(buf, sizeof(buf), path);
  assert_string_equal(buf, "");
  assert_int_equal(count_entries(dir), 1);
  // a relative path in the working folder
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(dir), 0);
  assert_int_equal(dso_write_file_atomic("rel.txt", "r", 1, &err), DSO_OK);
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(count_entries(dir), 2);
  remove_tree(dir);
}

static void test_streaming(void** state) {
  char dir[1024], path[1200], buf[4096];
  make_dir(dir, sizeof(dir), "stream");
  snprintf(path, sizeof(path), "%s/table.csv", dir);
  dsoError err = {0};
  assert_int_equal(dso_write_file_atomic(path, "old\n", 4, &err), DSO_OK);
  dsoAtomicFile* af = dso_atomic_open(path, &err);
  assert_non_null(af);
  assert_int_equal(dso_atomic_printf(af, &err, "a,b\n"), DSO_OK);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(dso_atomic_printf(af, &err, "%d,%.17g\n", i, i * 0.1), DSO_OK);
  }
  assert_int_equal(dso_atomic_write(af, "end\n", 4, &err), DSO_OK);
  // until commit the old file is what readers see, and the temporary file is hidden beside it
  read_back(buf, sizeof(buf), path);
  assert_string_equal(buf, "old\n");
  assert_int_equal(count_entries(dir), 2);
  assert_int_equal(dso_atomic_commit(af, &err), DSO_OK);
  read_back(buf, sizeof(buf), path);
  assert_true(!strncmp(buf, "a,b\n0,0\n1,0.10000000000000001\n", 28));
  assert_non_null(strstr(buf, "99,9.9000000000000004\nend\n"));
  assert_int_equal(count_entries(dir), 1);
  // the new file has ordinary permissions, not those of a private temporary file
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  mode_t mask = umask(0);
  umask(mask);
  assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
  remove_tree(dir);
}

static void test_abort_keeps_original(void** state) {
  char dir[1024], path[1200], buf[256];
  make_dir(dir, sizeof(dir), "abort");
  snprintf(path, sizeof(path), "%s/keep.json", dir);
  dsoError err = {0};
  assert_int_equal(dso_write_file_atomic(path, "{\"v\": 1}", 8, &err), DSO_OK);
  dsoAtomicFile* af = dso_atomic_open(path, &err);
  assert_non_null(af);
  assert_int_equal(dso_atomic_printf(af, &err, "{\"v\": 2, partial"), DSO_OK);
  dso_atomic_abort(af);
  dso_atomic_abort(NULL);
  read_back(buf, sizeof(buf), path);
  assert_string_equal(buf, "{\"v\": 1}");
  assert_int_equal(count_entries(dir), 1);
  // abort of a file that never existed leaves nothing
  snprintf(path, sizeof(path), "%s/never.txt", dir);
  af = dso_atomic_open(path, &err);
  assert_non_null(af);
  dso_atomic_abort(af);
  assert_int_equal(count_entries(dir), 1);
  assert_int_equal(access(path, F_OK), -1);
  remove_tree(dir);
}

static void test_failures_leave_nothing(void** state) {
  char dir[1024], path[1200], buf[256];
  make_dir(dir, sizeof(dir), "fail");
  dsoError err = {0};
  // a folder that does not exist
  snprintf(path, sizeof(path), "%s/missing/out.txt", dir);
  assert_int_equal(dso_write_file_atomic(path, "x", 1, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, path));
  assert_non_null(strstr(err.msg, "No such file"));
  assert_null(dso_atomic_open(path, NULL));
  // a path below a regular file
  char file[1200];
  snprintf(file, sizeof(file), "%s/plain", dir);
  dso_error_clear(&err);
  assert_int_equal(dso_write_file_atomic(file, "keep", 4, &err), DSO_OK);
  snprintf(path, sizeof(path), "%s/plain/out.txt", dir);
  dso_error_clear(&err);
  assert_int_equal(dso_write_file_atomic(path, "x", 1, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, path));
  // the destination is a folder: the rename fails, the temporary file is removed
  char sub[1200];
  snprintf(sub, sizeof(sub), "%s/sub", dir);
  assert_int_equal(dso_mkdir_p(sub, &err), DSO_OK);
  dso_error_clear(&err);
  assert_int_equal(dso_write_file_atomic(sub, "x", 1, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, sub));
  assert_non_null(strstr(err.msg, "cannot replace"));
  assert_int_equal(count_entries(dir), 2);
  assert_int_equal(count_entries(sub), 0);
  read_back(buf, sizeof(buf), file);
  assert_string_equal(buf, "keep");
  // names that are not files
  dso_error_clear(&err);
  assert_int_equal(dso_write_file_atomic("", "x", 1, &err), DSO_ERR_INPUT);
  dso_error_clear(&err);
  assert_int_equal(dso_write_file_atomic("/tmp/", "x", 1, &err), DSO_ERR_INPUT);
  assert_int_equal(dso_atomic_commit(NULL, NULL), DSO_ERR_INPUT);
  assert_int_equal(dso_atomic_write(NULL, "x", 1, NULL), DSO_ERR_INPUT);
  remove_tree(dir);
}

// a write error is remembered and reported by commit, which then removes the temporary file
static void test_write_error_reported_by_commit(void** state) {
  if (access("/dev/full", W_OK) != 0) {
    skip();
  }
  // /dev/full cannot hold a temporary file beside it, so fake one: swap the stream
  char dir[1024], path[1200], buf[64];
  make_dir(dir, sizeof(dir), "full");
  snprintf(path, sizeof(path), "%s/out.txt", dir);
  dsoError err = {0};
  assert_int_equal(dso_write_file_atomic(path, "orig", 4, &err), DSO_OK);
  dsoAtomicFile* af = dso_atomic_open(path, &err);
  assert_non_null(af);
  fclose(af->f);
  af->f = fopen("/dev/full", "wb");
  assert_non_null(af->f);
  setvbuf(af->f, NULL, _IONBF, 0);
  assert_int_equal(dso_atomic_printf(af, &err, "%s", "data"), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, path));
  dsoError err2 = {0};
  assert_int_equal(dso_atomic_write(af, "more", 4, &err2), DSO_ERR_IO);
  dsoError err3 = {0};
  assert_int_equal(dso_atomic_commit(af, &err3), DSO_ERR_IO);
  assert_non_null(strstr(err3.msg, "write failed"));
  read_back(buf, sizeof(buf), path);
  assert_string_equal(buf, "orig");
  assert_int_equal(count_entries(dir), 1);
  remove_tree(dir);
}

static void test_mkdir_p(void** state) {
  char dir[1024], path[1200];
  make_dir(dir, sizeof(dir), "mkdir");
  dsoError err = {0};
  snprintf(path, sizeof(path), "%s/a/b//c/", dir);
  assert_int_equal(dso_mkdir_p(path, &err), DSO_OK);
  snprintf(path, sizeof(path), "%s/a/b/c", dir);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(dso_mkdir_p(path, &err), DSO_OK);  // existing: fine
  // a part that is a file
  snprintf(path, sizeof(path), "%s/a/file", dir);
  assert_int_equal(dso_write_file_atomic(path, "x", 1, &err), DSO_OK);
  snprintf(path, sizeof(path), "%s/a/file/d", dir);
  assert_int_equal(dso_mkdir_p(path, &err), DSO_ERR_IO);
  assert_non_null(strstr(err.msg, "is not a folder"));
  assert_non_null(strstr(err.msg, "/a/file"));
  dso_error_clear(&err);
  assert_int_equal(dso_mkdir_p("", &err), DSO_ERR_INPUT);
  remove_tree(dir);
}

// dso_open_input / dso_check_input / dso_read_text_file on a regular file, a folder, a FIFO (which
// must be refused at once: SIGALRM ends the test program if a read blocks on it), a missing
// file, an oversized file and an empty name; files under DSO_BUILD_DIR
static void test_input_files(void** state) {
  char dir[1024], file[1100], fifo[1100], missing[1100];
  snprintf(dir, sizeof(dir), "%s/test_io_input", DSO_BUILD_DIR);
  remove_tree(dir);
  dsoError err = {0};
  assert_int_equal(dso_mkdir_p(dir, &err), DSO_OK);
  snprintf(file, sizeof(file), "%s/a.json", dir);
  snprintf(fifo, sizeof(fifo), "%s/fifo.json", dir);
  snprintf(missing, sizeof(missing), "%s/missing.json", dir);
  assert_int_equal(dso_write_file_atomic(file, "{\"a\": 1}", 8, &err), DSO_OK);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  alarm(20);
  // a regular file: its size, and a descriptor that reads it
  long long size = -1;
  int fd = dso_open_input(file, 0, &size, NULL, &err);
  assert_true(fd >= 0);
  assert_int_equal(size, 8);
  char buf[16] = "";
  assert_int_equal(read(fd, buf, sizeof(buf)), 8);
  close(fd);
  assert_int_equal(dso_check_input(file, 8, NULL, "a task file", &err), DSO_OK);
  char* text = dso_read_text_file(file, &err);
  assert_non_null(text);
  assert_string_equal(text, "{\"a\": 1}");
  free(text);
  // what is refused, and how
  struct {
    const char* path;
    long long max;
    dsoStatus code;
    const char* msg;
  } bad[] = {
      {dir, 0, DSO_ERR_INPUT, "test_io_input: not a regular file (a directory); expected a task"},
      {fifo, 0, DSO_ERR_INPUT, "fifo.json: not a regular file (a FIFO); expected a task file"},
      {missing, 0, DSO_ERR_IO, "missing.json: cannot open file: No such file or directory"},
      {file, 7, DSO_ERR_INPUT, "a.json: file is 8 bytes, more than the 7 allowed"},
      {"", 0, DSO_ERR_INPUT, "empty file name, expected the path of a task file"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dso_error_clear(&err);
    size = -1;
    assert_int_equal(dso_open_input(bad[i].path, bad[i].max, &size, "a task file", &err), -1);
    assert_int_equal(err.code, bad[i].code);
    if (!strstr(err.msg, bad[i].msg)) {
      fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err.msg, bad[i].msg);
    }
    assert_int_equal(size, -1);
    dso_error_clear(&err);
    assert_int_equal(dso_check_input(bad[i].path, bad[i].max, NULL, "a task file", &err),
                     bad[i].code);
  }
  // the text reader refuses the FIFO and the folder the same way
  dso_error_clear(&err);
  assert_null(dso_read_text_file(fifo, &err));
  assert_int_equal(err.code, DSO_ERR_INPUT);
  assert_non_null(strstr(err.msg, "not a regular file (a FIFO)"));
  dso_error_clear(&err);
  assert_null(dso_read_text_file(dir, &err));
  assert_non_null(strstr(err.msg, "not a regular file (a directory)"));
  alarm(0);
  remove_tree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replace),
      cmocka_unit_test(test_streaming),
      cmocka_unit_test(test_abort_keeps_original),
      cmocka_unit_test(test_failures_leave_nothing),
      cmocka_unit_test(test_write_error_reported_by_commit),
      cmocka_unit_test(test_mkdir_p),
      cmocka_unit_test(test_input_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
