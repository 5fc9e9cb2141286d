// Atomic file output: results, checkpoints and recorded datasets are written to a temporary file
// in the destination's folder, flushed to disk and renamed over the destination, so a reader sees
// either the old file or the complete new one, never a partial write. Output folders are made
// with dso_mkdir_p. Input files are opened with dso_open_input, which refuses anything but a
// regular file without blocking (a FIFO given as a task file would otherwise hang the reader).
#ifndef DSO_IO_H
#define DSO_IO_H

#include <stddef.h>
#include <stdio.h>

#include "dso/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// Writes len bytes of data (may be NULL when len is 0) to path atomically: a temporary file
// beside path is written, flushed (fflush + fsync) and renamed over path. On any failure the
// temporary file is removed, path is left as it was, and err names path and the cause.
dsoStatus dso_write_file_atomic(const char* path, const char* data, size_t len, dsoError* err);

// Opens path for reading after checking, without blocking, that it is a regular file of at most
// max_bytes bytes (max_bytes <= 0: no limit). Returns an open descriptor in blocking mode (close
// it with close()) and the size in *size (may be NULL), or -1 with err naming path and the cause:
// DSO_ERR_INPUT for "not a regular file (a directory)" / "(a FIFO)" / "(a device)" / "(a
// socket)" and for a file larger than max_bytes, DSO_ERR_IO when it cannot be opened. what says
// what path should be in messages, e.g. "an MJCF file" (NULL: "a file").
int dso_open_input(const char* path, long long max_bytes, long long* size, const char* what,
                   dsoError* err);

// Checks path as dso_open_input does, then closes it: for readers that open the file themselves
// (MuJoCo's model loader). Returns DSO_OK or the error dso_open_input gave.
dsoStatus dso_check_input(const char* path, long long max_bytes, long long* size,
                          const char* what, dsoError* err);

// Largest text input file dso reads (task JSON, values files, MJCF, CSV), in bytes.
#define DSO_TEXT_MAX_BYTES (64L << 20)

// Reads a whole text file into a malloc'd, NUL-terminated buffer. Missing, unreadable, empty,
// oversized (DSO_TEXT_MAX_BYTES) or binary (NUL-containing) files and anything that is not a
// regular file (a directory, a FIFO: refused without blocking, see dso_open_input) are errors
// naming the file.
char* dso_read_text_file(const char* path, dsoError* err);

// A file being written atomically. Fields are private to io.c.
typedef struct dsoAtomicFile_ {
  FILE* f;          // the open temporary file
  char* path;       // destination (owned)
  char* tmp;        // temporary file beside it (owned)
  dsoError first;   // first write failure, reported again by dso_atomic_commit
} dsoAtomicFile;

// Starts writing path: creates the temporary file (mode 0666 less the umask). Returns NULL with
// err naming path when the folder does not exist or cannot be written.
dsoAtomicFile* dso_atomic_open(const char* path, dsoError* err);

// Appends len bytes of data. A failure is returned, remembered, and returned again by commit.
dsoStatus dso_atomic_write(dsoAtomicFile* af, const void* data, size_t len, dsoError* err);

// Appends printf-style text; failures as for dso_atomic_write.
dsoStatus dso_atomic_printf(dsoAtomicFile* af, dsoError* err, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

// Flushes what was written so far to the temporary file, so that it can be read back at
// dso_atomic_temp_path (to check it before commit); failures as for dso_atomic_write.
dsoStatus dso_atomic_flush(dsoAtomicFile* af, dsoError* err);

// The temporary file's path (valid until commit or abort): .NAME.PID.N.tmp beside the
// destination NAME, the form dso_atomic_is_temp recognizes.
const char* dso_atomic_temp_path(const dsoAtomicFile* af);

// Flushes, fsyncs and renames the temporary file over the destination, then frees af. If any
// write or this step failed, the temporary file is removed, the destination is left as it was and
// the error (naming the destination) is returned. af is freed in every case; NULL is an error.
dsoStatus dso_atomic_commit(dsoAtomicFile* af, dsoError* err);

// Abandons the write: closes and removes the temporary file and frees af; the destination is left
// as it was. NULL is a no-op.
void dso_atomic_abort(dsoAtomicFile* af);

// Makes the folder path and its missing parents (mode 0777 less the umask), like `mkdir -p`.
// An existing folder is fine; an existing non-folder, or a failure, is an error naming the part
// of path that could not be made.
dsoStatus dso_mkdir_p(const char* path, dsoError* err);

// True when name (a file name without folder) is one dso_atomic_open gives the temporary file of
// the destination file name dest (without folder): ".<dest>.<pid>.<n>.tmp" with decimal pid and n.
int dso_atomic_is_temp(const char* name, const char* dest);

#ifdef __cplusplus
}
#endif
#endif  // DSO_IO_H
