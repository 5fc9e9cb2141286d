#define _POSIX_C_SOURCE 200809L  // fsync, fdopen, mkdir, strdup
#include "core/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

// the kind of a file that is not regular, for messages
static const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "an unknown kind of file";
}

int dso_open_input(const char* path, long long max_bytes, long long* size, const char* what,
                   dsoError* err) {
  const char* expect = what ? what : "a file";
  if (!path || !path[0]) {
    dso_error(err, DSO_ERR_INPUT, "empty file name, expected the path of %s", expect);
    return -1;
  }
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    dso_error(err, DSO_ERR_IO, "%s: cannot open file: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    dso_error(err, DSO_ERR_IO, "%s: cannot read file: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    dso_error(err, DSO_ERR_INPUT, "%s: not a regular file (%s); expected %s", path,
              file_kind(st.st_mode), expect);
    close(fd);
    return -1;
  }
  if (max_bytes > 0 && (long long)st.st_size > max_bytes) {
    dso_error(err, DSO_ERR_INPUT, "%s: file is %lld bytes, more than the %lld allowed", path,
              (long long)st.st_size, max_bytes);
    close(fd);
    return -1;
  }
  // back to blocking reads: a regular file never waits, but keep the usual semantics
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    dso_error(err, DSO_ERR_IO, "%s: cannot read file: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (size) {
    *size = (long long)st.st_size;
  }
  return fd;
}

dsoStatus dso_check_input(const char* path, long long max_bytes, long long* size,
                          const char* what, dsoError* err) {
  dsoError e = {0};
  int fd = dso_open_input(path, max_bytes, size, what, &e);
  if (fd < 0) {
    return dso_error(err, e.code, "%s", e.msg);
  }
  close(fd);
  return DSO_OK;
}

static atomic_uint tmp_counter;

// "<dir>/.<base>.<pid>.<n>.tmp": hidden, in the destination's folder so rename stays atomic
static char* temp_name(const char* path, unsigned n) {
  const char* slash = strrchr(path, '/');
  size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
  size_t len = strlen(path) + 64;
  char* out = (char*)malloc(len);
  if (out) {
    snprintf(out, len, "%.*s.%s.%ld.%u.tmp", (int)dir, path, path + dir, (long)getpid(), n);
  }
  return out;
}

static void free_file(dsoAtomicFile* af) {
  free(af->path);
  free(af->tmp);
  free(af);
}

dsoAtomicFile* dso_atomic_open(const char* path, dsoError* err) {
  if (!path || !path[0] || path[strlen(path) - 1] == '/') {
    dso_error(err, DSO_ERR_INPUT, "\"%s\": expected a file name to write", path ? path : "");
    return NULL;
  }
  dsoAtomicFile* af = (dsoAtomicFile*)calloc(1, sizeof(dsoAtomicFile));
  if (!af || !(af->path = strdup(path))) {
    free(af);
    dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    return NULL;
  }
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    free(af->tmp);
    af->tmp = temp_name(path, atomic_fetch_add(&tmp_counter, 1u));
    if (!af->tmp) {
      free_file(af);
      dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
      return NULL;
    }
    fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 && errno != EEXIST) {
      break;
    }
  }
  if (fd < 0) {
    dso_error(err, DSO_ERR_IO, "%s: cannot create a file in its folder: %s", path,
              strerror(errno));
    free_file(af);
    return NULL;
  }
  af->f = fdopen(fd, "wb");
  if (!af->f) {
    dso_error(err, DSO_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    close(fd);
    unlink(af->tmp);
    free_file(af);
    return NULL;
  }
  return af;
}

static dsoStatus write_failed(dsoAtomicFile* af, dsoError* err) {
  dso_error(&af->first, DSO_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
  return dso_error(err, af->first.code, "%s", af->first.msg);
}

dsoStatus dso_atomic_write(dsoAtomicFile* af, const void* data, size_t len, dsoError* err) {
  if (!af) {
    return dso_error(err, DSO_ERR_INPUT, "dso_atomic_write: no file");
  }
  if (af->first.code) {
    return dso_error(err, af->first.code, "%s", af->first.msg);
  }
  if (len && fwrite(data, 1, len, af->f) != len) {
    return write_failed(af, err);
  }
  return DSO_OK;
}

dsoStatus dso_atomic_printf(dsoAtomicFile* af, dsoError* err, const char* fmt, ...) {
  if (!af) {
    return dso_error(err, DSO_ERR_INPUT, "dso_atomic_printf: no file");
  }
  if (af->first.code) {
    return dso_error(err, af->first.code, "%s", af->first.msg);
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vfprintf(af->f, fmt, ap);
  va_end(ap);
  return n < 0 ? write_failed(af, err) : DSO_OK;
}

dsoStatus dso_atomic_flush(dsoAtomicFile* af, dsoError* err) {
  if (!af) {
    return dso_error(err, DSO_ERR_INPUT, "dso_atomic_flush: no file");
  }
  if (af->first.code) {
    return dso_error(err, af->first.code, "%s", af->first.msg);
  }
  return fflush(af->f) != 0 ? write_failed(af, err) : DSO_OK;
}

const char* dso_atomic_temp_path(const dsoAtomicFile* af) {
  return af ? af->tmp : NULL;
}

// makes the rename durable; file systems without directory fsync are not an error
static void sync_folder(const char* path) {
  const char* slash = strrchr(path, '/');
  char* dir = strdup(slash ? path : ".");
  if (!dir) {
    return;
  }
  if (slash) {
    dir[slash == path ? 1 : slash - path] = '\0';
  }
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

dsoStatus dso_atomic_commit(dsoAtomicFile* af, dsoError* err) {
  if (!af) {
    return dso_error(err, DSO_ERR_INPUT, "dso_atomic_commit: no file");
  }
  dsoError e = af->first;
  if (!e.code && (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0)) {
    dso_error(&e, DSO_ERR_IO, "%s: cannot flush to disk: %s", af->path, strerror(errno));
  }
  if (fclose(af->f) != 0) {
    dso_error(&e, DSO_ERR_IO, "%s: cannot close: %s", af->path, strerror(errno));
  }
  af->f = NULL;
  if (!e.code && rename(af->tmp, af->path) != 0) {
    dso_error(&e, DSO_ERR_IO, "%s: cannot replace: %s", af->path, strerror(errno));
  }
  if (e.code) {
    unlink(af->tmp);
  } else {
    sync_folder(af->path);
  }
  free_file(af);
  return e.code ? dso_error(err, e.code, "%s", e.msg) : DSO_OK;
}

void dso_atomic_abort(dsoAtomicFile* af) {
  if (!af) {
    return;
  }
  if (af->f) {
    fclose(af->f);
  }
  unlink(af->tmp);
  free_file(af);
}

dsoStatus dso_write_file_atomic(const char* path, const char* data, size_t len, dsoError* err) {
  dsoError e = {0};
  dsoAtomicFile* af = dso_atomic_open(path, &e);
  if (af && dso_atomic_write(af, data, len, &e)) {
    dso_atomic_abort(af);
    af = NULL;
  }
  if (af) {
    dso_atomic_commit(af, &e);
  }
  return e.code ? dso_error(err, e.code, "%s", e.msg) : DSO_OK;
}

// makes one folder; an existing folder is fine
static dsoStatus make_folder(const char* dir, const char* whole, dsoError* err) {
  if (mkdir(dir, 0777) == 0) {
    return DSO_OK;
  }
  int code = errno;
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return DSO_OK;
    }
    return dso_error(err, DSO_ERR_IO, "%s: cannot make folder: \"%s\" exists and is not a folder",
                     whole, dir);
  }
  return dso_error(err, DSO_ERR_IO, "%s: cannot make folder \"%s\": %s", whole, dir,
                   strerror(code));
}

dsoStatus dso_mkdir_p(const char* path, dsoError* err) {
  if (!path || !path[0]) {
    return dso_error(err, DSO_ERR_INPUT, "empty folder name");
  }
  char* dir = strdup(path);
  if (!dir) {
    return dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
  }
  dsoStatus st = DSO_OK;
  // make each parent in turn: cut the string at every '/' after the first character
  for (char* p = dir + 1; *p && !st; p++) {
    if (*p == '/' && p[-1] != '/') {
      *p = '\0';
      st = make_folder(dir, path, err);
      *p = '/';
    }
  }
  if (!st) {
    st = make_folder(dir, path, err);
  }
  free(dir);
  return st;
}

// the pattern of temp_name above
static const char* skip_digits(const char* s) {
  const char* p = s;
  while (*p >= '0' && *p <= '9') {
    p++;
  }
  return p > s ? p : NULL;
}

int dso_atomic_is_temp(const char* name, const char* dest) {
  size_t len = strlen(dest);
  if (!len || name[0] != '.' || strncmp(name + 1, dest, len) != 0 || name[len + 1] != '.') {
    return 0;
  }
  const char* p = skip_digits(name + len + 2);
  if (!p || *p != '.') {
    return 0;
  }
  p = skip_digits(p + 1);
  return p && !strcmp(p, ".tmp");
}

char* dso_read_text_file(const char* path, dsoError* err) {
  long long size = 0;
  int fd = dso_open_input(path, DSO_TEXT_MAX_BYTES, &size, "a file", err);
  if (fd < 0) {
    return NULL;
  }
  if (size == 0) {
    close(fd);
    dso_error(err, DSO_ERR_INPUT, "%s: file is empty", path);
    return NULL;
  }
  char* buf = (char*)malloc((size_t)size + 1);
  if (!buf) {
    close(fd);
    dso_error(err, DSO_ERR_MEMORY, "%s: out of memory", path);
    return NULL;
  }
  size_t got = 0;
  int read_errno = 0;
  while (got < (size_t)size) {
    ssize_t n = read(fd, buf + got, (size_t)size - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      read_errno = n < 0 ? errno : 0;
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  if (got != (size_t)size) {
    free(buf);
    dso_error(err, DSO_ERR_IO, "%s: short read (%zu of %lld bytes)%s%s", path, got, size,
              read_errno ? ": " : "", read_errno ? strerror(read_errno) : "");
    return NULL;
  }
  buf[size] = '\0';
  if (strlen(buf) != (size_t)size) {
    free(buf);
    dso_error(err, DSO_ERR_INPUT, "%s: binary file (contains a NUL byte), expected text", path);
    return NULL;
  }
  return buf;
}
