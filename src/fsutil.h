/* fsutil.h - the one way reroute writes a file: create a new file under a
 * unique name, write it whole, fsync it, then publish it by rename or link
 * and fsync the directory. Mail-agnostic: nothing here knows about messages.
 *
 * DIAGNOSTICS
 *   Every function fails with a G_IO_ERROR code mapped from errno
 *   (g_io_error_from_errno) and a message naming the path; the errno itself
 *   is kept in rr_fs_last_errno() for callers that must judge "retry"
 *   (ENOSPC, EDQUOT, EAGAIN) from "fail". On any failure of a new file,
 *   rr_new_file_abort() removes it: nothing half-written is ever left. */
#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct _RrNewFile RrNewFile;

/* (transfer full) Creates DIR/NAME-PREFIX<unique> with O_EXCL|O_NOFOLLOW and
 * mode 0600, retrying with a fresh name if it exists. @prefix may be NULL. */
RrNewFile *rr_new_file_create (const char *dir, const char *prefix, GError **error);

gboolean rr_new_file_write (RrNewFile *nf, const void *data, gsize len, GError **error);
/* Flushes, gives the file the mode, owner (when root) and times of @like
 * (if not NULL), fsyncs and closes it: after this the bytes are on disk. */
gboolean rr_new_file_finish (RrNewFile *nf, const struct stat *like, GError **error);
/* Flushes and closes without fsync: for a batch that rr_fs_syncfs() makes
 * durable at once, one disk flush for many files. */
gboolean rr_new_file_close (RrNewFile *nf, GError **error);
/* syncfs(2) on the file system holding @path: every file written there so far
 * is on disk when it returns. */
gboolean rr_fs_syncfs (const char *path, GError **error);

/* Renames the synced file to @path (replacing it) and fsyncs its directory. */
gboolean rr_new_file_rename (RrNewFile *nf, const char *path, GError **error);
/* Links the synced file to @path (never replacing: EEXIST is an error), then
 * unlinks the temporary name and fsyncs the directory of @path. */
gboolean rr_new_file_link (RrNewFile *nf, const char *path, GError **error);
/* The same after rr_new_file_close(), when a sync of the file system has
 * made the file durable: links it, removes the temporary name; the caller
 * fsyncs the directory. */
gboolean rr_new_file_link_unsynced (RrNewFile *nf, const char *path, GError **error);
/* Removes the file if not yet published and frees @nf; NULL is a no-op. */
void rr_new_file_abort (RrNewFile *nf);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrNewFile, rr_new_file_abort)

const char *rr_new_file_get_path (const RrNewFile *nf);
int rr_new_file_get_fd (const RrNewFile *nf);

/* fsyncs a directory so that a rename or unlink in it is durable. */
gboolean rr_fs_sync_dir (const char *dir, GError **error);

/* A unique file name in the Maildir style: time.M<usec>P<pid>Q<n>.host
 * (transfer full). */
char *rr_fs_unique_name (void);

/* The file-system mutations reroute makes, each one a fault-injection point
 * in the test build (REROUTE_FAULT, see fsutil.c). Same contract as the
 * system calls they wrap. */
int rr_fs_open (const char *path, int flags, mode_t mode);
int rr_fs_unlink (const char *path);
int rr_fs_rename (const char *from, const char *to);
int rr_fs_mkdir (const char *path, mode_t mode);
int rr_fs_mkdirat (int dirfd, const char *name, mode_t mode);
/* write(2) until all of @len is written; -1 with errno on failure. */
int rr_fs_write_all (int fd, const void *data, gsize len);
int rr_fs_fsync (int fd);
/* Gives the unnamed file @fd (opened with O_TMPFILE) the name @path, never
 * replacing one (EEXIST); ENOENT also when /proc is not mounted. */
int rr_fs_link_fd (int fd, const char *path);

/* This host's name as it goes into Maildir file names (transfer none). */
const char *rr_fs_hostname (void);

/* The errno of the last failure reported by this module in this thread. */
int rr_fs_last_errno (void);

/* Sets @error from errno as "@what @path: strerror". Returns FALSE. */
gboolean rr_fs_set_error (GError **error, const char *what, const char *path);

G_END_DECLS
