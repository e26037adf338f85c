/* fsutil.c - write-new, fsync, publish.
 *
 * A message is never overwritten where it lies: the new copy is written in
 * full under a fresh name, fsynced, and only then renamed or linked into place,
 * with the directory fsynced after, so a crash at any instant leaves either the
 * old bytes or the new ones, never a torn file (the same order as Postfix's
 * mail_copy and mblaze's mdeliver). */
#include "config.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)  /* under malloc's mmap threshold */

/* Writes are gathered in a buffer: a spool rewrite sends many small segments
 * (headers, then a body slice) and one syscall each would dominate. */
struct _RrNewFile {
  char *path;
  int fd;
  gboolean published;
  gsize used;
  char *buf;      /* BUF_SIZE bytes while open; freed on close */
  goffset written, kicked;
};

static _Thread_local int last_errno;

#ifdef RR_FAULT_INJECTION
/* Test build only: REROUTE_FAULT=kill:N kills the process just before its
 * Nth file-system mutation; REROUTE_FAULT=OP:N:ERRNO makes the Nth call of
 * OP (open write fsync rename link unlink mkdir, and read) fail with ERRNO;
 * REROUTE_FAULT=count prints, at exit, how many calls of each OP the run
 * made ("reroute-fault: calls: open=N read=N ... kill=N", kill the number
 * of mutations), so that a test can sweep N over every one of them. This is
 * how the tests make crashes and full disks really happen at every step.
 *
 * Mutations are the creating opens, writes, fsyncs, renames, links,
 * unlinks and mkdirs made through this file. cmd/reroute-fault is also
 * linked with -Wl,--wrap for open, openat, read and pread (RR_FAULT_WRAP,
 * below), so that every open (for reading too, and of directories to fsync
 * them) and every read of the library's code counts as an "open" or a
 * "read" call and can fail; those are not mutations. There, two more:
 * REROUTE_FAULT=open:=NAME:ERRNO makes the opens of a file named NAME fail
 * (an unreadable message), and REROUTE_FAULT=move:NAME moves a file NAME in
 * a new/ directory to ../cur/NAME:2,S just before it is opened, as a MUA
 * does between our readdir and our open. */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>

static const struct { const char *name; int value; } errnos[] = {
  { "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EACCES", EACCES }, { "EDQUOT", EDQUOT },
  { "EROFS", EROFS }, { "EPERM", EPERM },
};

static const char *const fault_ops[] = { "open", "read", "write", "fsync", "rename", "link",
                                         "unlink", "mkdir" };
static guint fault_calls[G_N_ELEMENTS (fault_ops)];
static guint fault_mutations;

static void
print_fault_counts (void)
{
  fprintf (stderr, "reroute-fault: calls:");
  for (guint i = 0; i < G_N_ELEMENTS (fault_ops); i++)
    fprintf (stderr, " %s=%u", fault_ops[i], fault_calls[i]);
  fprintf (stderr, " kill=%u\n", fault_mutations);
}

static gboolean
set_fault_errno (const char *name)
{
  errno = EIO;
  for (guint k = 0; k < G_N_ELEMENTS (errnos); k++)
    if (strcmp (name, errnos[k].name) == 0)
      errno = errnos[k].value;
  return TRUE;
}

/* Counts a call of @op; TRUE (with errno set) when it is the one to fail. */
static gboolean
fault_call (const char *op, gboolean mutation)
{
  static gboolean counting;
  const char *spec = getenv ("REROUTE_FAULT");  /* read each time: unit tests change it */
  const char *colon, *colon2;
  guint i = 0, n;
  gsize len;

  if (spec == NULL)
    return FALSE;
  while (strcmp (fault_ops[i], op) != 0)
    i++;
  n = ++fault_calls[i];
  if (mutation)
    fault_mutations++;
  if (strcmp (spec, "count") == 0 && !counting)
    counting = TRUE, atexit (print_fault_counts);
  if (mutation && g_str_has_prefix (spec, "kill:")
      && strtoul (spec + 5, NULL, 10) == fault_mutations)
    raise (SIGKILL);
  colon = strchr (spec, ':');
  len = colon ? (gsize) (colon - spec) : 0;
  if (len != strlen (op) || strncmp (spec, op, len) != 0
      || (colon2 = strchr (colon + 1, ':')) == NULL || strtoul (colon + 1, NULL, 10) != n)
    return FALSE;
  return set_fault_errno (colon2 + 1);
}
#define fault(op) fault_call (op, TRUE)

#ifdef RR_FAULT_WRAP
/* -Wl,--wrap=open,--wrap=openat,--wrap=read,--wrap=pread: the library's
 * calls come here first (our own creating opens below count once, in
 * rr_fs_open). */
int __real_open (const char *path, int flags, ...);
int __real_openat (int dirfd, const char *path, int flags, ...);
ssize_t __real_read (int fd, void *buf, size_t len);
ssize_t __real_pread (int fd, void *buf, size_t len, off_t at);
int __wrap_open (const char *path, int flags, ...);
int __wrap_openat (int dirfd, const char *path, int flags, ...);
ssize_t __wrap_read (int fd, void *buf, size_t len);
ssize_t __wrap_pread (int fd, void *buf, size_t len, off_t at);

static gboolean
creating (int flags)
{
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* open:=NAME:ERRNO and move:NAME, for an open for reading of @path. */
static gboolean
fault_named (const char *path)
{
  const char *spec = getenv ("REROUTE_FAULT");
  g_autofree char *base = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *to = NULL;
  const char *last;

  if (spec == NULL || !(g_str_has_prefix (spec, "open:=") || g_str_has_prefix (spec, "move:")))
    return FALSE;
  base = g_path_get_basename (path);
  last = strrchr (spec, ':');  /* NAME may hold ':' */
  if (g_str_has_prefix (spec, "open:=") && last > spec + 6
      && strlen (base) == (gsize) (last - spec - 6) && strncmp (spec + 6, base, last - spec - 6) == 0)
    return set_fault_errno (last + 1);
  if (g_str_has_prefix (spec, "move:") && strcmp (spec + 5, base) == 0)
    {
      dir = g_path_get_dirname (path);
      if (g_str_has_suffix (dir, "/new"))
        {
          to = g_strdup_printf ("%.*s/cur/%s:2,S", (int) strlen (dir) - 4, dir, base);
          (void) !rename (path, to);
        }
    }
  return FALSE;
}

static mode_t
open_mode (int flags, va_list ap)
{
  return creating (flags) ? (mode_t) va_arg (ap, int) : 0;
}

int
__wrap_open (const char *path, int flags, ...)
{
  va_list ap;
  mode_t mode;

  va_start (ap, flags);
  mode = open_mode (flags, ap);
  va_end (ap);
  if ((!creating (flags) && fault_named (path)) || fault_call ("open", creating (flags)))
    return -1;
  return __real_open (path, flags, mode);
}

int
__wrap_openat (int dirfd, const char *path, int flags, ...)
{
  va_list ap;
  mode_t mode;

  g_autofree char *full = NULL;

  va_start (ap, flags);
  mode = open_mode (flags, ap);
  va_end (ap);
  if (dirfd != AT_FDCWD && !g_path_is_absolute (path))  /* NAME in its folder */
    {
      g_autofree char *link = g_strdup_printf ("/proc/self/fd/%d", dirfd);
      g_autofree char *dir = g_file_read_link (link, NULL);
      full = dir ? g_build_filename (dir, path, NULL) : NULL;
    }
  if ((!creating (flags) && fault_named (full ? full : path))
      || fault_call ("open", creating (flags)))
    return -1;
  return __real_openat (dirfd, path, flags, mode);
}

ssize_t
__wrap_read (int fd, void *buf, size_t len)
{
  return fault_call ("read", FALSE) ? -1 : __real_read (fd, buf, len);
}

ssize_t
__wrap_pread (int fd, void *buf, size_t len, off_t at)
{
  return fault_call ("read", FALSE) ? -1 : __real_pread (fd, buf, len, at);
}
#endif
#else
#define fault(op) FALSE
#endif

int
rr_fs_open (const char *path, int flags, mode_t mode)
{
#ifndef RR_FAULT_WRAP  /* else the wrapped open(2) counts the call */
  if ((flags & O_CREAT) && fault ("open"))
    return -1;
#endif
  return open (path, flags, mode);
}

int
rr_fs_link_fd (int fd, const char *path)
{
  char proc[64];

  if (fault ("link"))
    return -1;
  g_snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  return linkat (AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

int
rr_fs_unlink (const char *path)
{
  return fault ("unlink") ? -1 : unlink (path);
}

int
rr_fs_rename (const char *from, const char *to)
{
  return fault ("rename") ? -1 : rename (from, to);
}

int
rr_fs_mkdir (const char *path, mode_t mode)
{
  return fault ("mkdir") ? -1 : mkdir (path, mode);
}

int
rr_fs_mkdirat (int dirfd, const char *name, mode_t mode)
{
  return fault ("mkdir") ? -1 : mkdirat (dirfd, name, mode);
}

int
rr_fs_fsync (int fd)
{
  return fault ("fsync") ? -1 : fsync (fd);
}

int
rr_fs_write_all (int fd, const void *data, gsize len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = fault ("write") ? -1 : write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n == 0)
            errno = EIO;
          return -1;
        }
      p += n;
      len -= (gsize) n;
    }
  return 0;
}

int
rr_fs_last_errno (void)
{
  return last_errno;
}

gboolean
rr_fs_set_error (GError **error, const char *what, const char *path)
{
  int e = errno;

  last_errno = e;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), "%s %s: %s", what, path,
               g_strerror (e));
  errno = e;
  return FALSE;
}

const char *
rr_fs_hostname (void)
{
  static char host[256];

  if (host[0] == '\0')
    {
      if (gethostname (host, sizeof host - 1) != 0 || host[0] == '\0')
        strcpy (host, "localhost");
      for (char *h = host; *h; h++)  /* '/' and ':' would break a Maildir name */
        if (*h == '/' || *h == ':')
          *h = '_';
    }
  return host;
}

char *
rr_fs_unique_name (void)
{
  static gint counter;
  struct timeval tv;

  gettimeofday (&tv, NULL);
  return g_strdup_printf ("%ld.M%06ldP%ldQ%d.%s", (long) tv.tv_sec, (long) tv.tv_usec,
                          (long) getpid (), g_atomic_int_add (&counter, 1), rr_fs_hostname ());
}

RrNewFile *
rr_new_file_create (const char *dir, const char *prefix, GError **error)
{
  for (int attempt = 0; attempt < 100; attempt++)
    {
      g_autofree char *name = rr_fs_unique_name ();
      g_autofree char *path = g_strdup_printf ("%s/%s%s", dir, prefix ? prefix : "", name);
      int fd = rr_fs_open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

      if (fd >= 0)
        {
          RrNewFile *nf = g_new0 (RrNewFile, 1);
          nf->buf = g_malloc (BUF_SIZE);
          nf->path = g_steal_pointer (&path);
          nf->fd = fd;
          return nf;
        }
      if (errno != EEXIST)
        return rr_fs_set_error (error, "cannot create", path), NULL;
    }
  errno = EEXIST;
  return rr_fs_set_error (error, "cannot find a free name in", dir), NULL;
}

/* Written data is sent to the disk every WRITEBACK_CHUNK bytes, without
 * waiting: the fsync at the end then waits for the last chunk only, not for
 * the whole file, and the disk works while the next messages are parsed. */
#define WRITEBACK_CHUNK (4 << 20)

static gboolean
write_fully (RrNewFile *nf, const void *data, gsize len, GError **error)
{
  if (rr_fs_write_all (nf->fd, data, len) != 0)
    return rr_fs_set_error (error, "cannot write", nf->path);
  nf->written += len;
  if (nf->written - nf->kicked >= WRITEBACK_CHUNK)
    {
      /* a hint: an error here shows again at the fsync */
      (void) sync_file_range (nf->fd, nf->kicked, nf->written - nf->kicked,
                              SYNC_FILE_RANGE_WRITE);
      nf->kicked = nf->written;
    }
  return TRUE;
}

static gboolean
flush_buffer (RrNewFile *nf, GError **error)
{
  gsize n = nf->used;

  nf->used = 0;
  return write_fully (nf, nf->buf, n, error);
}

gboolean
rr_new_file_write (RrNewFile *nf, const void *data, gsize len, GError **error)
{
  if (nf->used + len > BUF_SIZE && !flush_buffer (nf, error))
    return FALSE;
  if (len >= BUF_SIZE)
    return write_fully (nf, data, len, error);
  memcpy (nf->buf + nf->used, data, len);
  nf->used += len;
  return TRUE;
}

/* Mode, owner and times follow the file being replaced: a mailbox keeps its
 * permissions, and Dovecot takes a Maildir file's mtime as its received date. */
static gboolean
copy_attributes (RrNewFile *nf, const struct stat *like, GError **error)
{
  struct timespec times[2] = { like->st_atim, like->st_mtim };

  if (geteuid () == 0 && fchown (nf->fd, like->st_uid, like->st_gid) != 0)
    return rr_fs_set_error (error, "cannot chown", nf->path);
  if (fchmod (nf->fd, like->st_mode & 07777) != 0)
    return rr_fs_set_error (error, "cannot chmod", nf->path);
  if (futimens (nf->fd, times) != 0)
    return rr_fs_set_error (error, "cannot set times of", nf->path);
  return TRUE;
}

gboolean
rr_new_file_finish (RrNewFile *nf, const struct stat *like, GError **error)
{
  int fd;

  if (!flush_buffer (nf, error) || (like && !copy_attributes (nf, like, error)))
    return FALSE;
  fd = nf->fd;
  nf->fd = -1;
  g_clear_pointer (&nf->buf, g_free);
  /* fsync before publishing: a rename that reaches the disk before the data
   * would leave an empty or torn message under the final name. */
  if (rr_fs_fsync (fd) != 0)
    {
      rr_fs_set_error (error, "cannot fsync", nf->path);
      close (fd);
      return FALSE;
    }
  if (close (fd) != 0)
    return rr_fs_set_error (error, "cannot close", nf->path);
  return TRUE;
}

gboolean
rr_new_file_close (RrNewFile *nf, GError **error)
{
  int fd;

  if (!flush_buffer (nf, error))
    return FALSE;
  fd = nf->fd;
  nf->fd = -1;
  g_clear_pointer (&nf->buf, g_free);
  if (close (fd) != 0)
    return rr_fs_set_error (error, "cannot close", nf->path);
  return TRUE;
}

gboolean
rr_fs_syncfs (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    return rr_fs_set_error (error, "cannot open", path);
  ok = !fault ("fsync") && syncfs (fd) == 0;
  if (!ok)
    rr_fs_set_error (error, "cannot sync the file system of", path);
  close (fd);
  return ok;
}

gboolean
rr_fs_sync_dir (const char *dir, GError **error)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  gboolean ok;

  if (fd < 0)
    return rr_fs_set_error (error, "cannot open directory", dir);
  ok = rr_fs_fsync (fd) == 0 || errno == EINVAL;  /* EINVAL: fs cannot sync dirs */
  if (!ok)
    rr_fs_set_error (error, "cannot fsync directory", dir);
  close (fd);
  return ok;
}

gboolean
rr_new_file_rename (RrNewFile *nf, const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);

  if (rr_fs_rename (nf->path, path) != 0)
    return rr_fs_set_error (error, "cannot rename to", path);
  nf->published = TRUE;
  /* The rename is durable only once its directory is. */
  return rr_fs_sync_dir (dir, error);
}

gboolean
rr_new_file_link (RrNewFile *nf, const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);

  return rr_new_file_link_unsynced (nf, path, error) && rr_fs_sync_dir (dir, error);
}

gboolean
rr_new_file_link_unsynced (RrNewFile *nf, const char *path, GError **error)
{
  if (fault ("link") || link (nf->path, path) != 0)
    return rr_fs_set_error (error, "cannot link to", path);
  /* Linked: the message is there. A temporary name we cannot remove is
   * reported (abort tries again; the next run cleans tmp/), and the caller
   * keeps its source, so nothing depends on a half-finished step. */
  if (rr_fs_unlink (nf->path) != 0)
    return rr_fs_set_error (error, "cannot remove", nf->path);
  nf->published = TRUE;
  return TRUE;
}

void
rr_new_file_abort (RrNewFile *nf)
{
  if (nf == NULL)
    return;
  if (nf->fd >= 0)
    close (nf->fd);
  if (!nf->published)
    unlink (nf->path);  /* cleanup, not a mutation of mail: never faulted */
  g_free (nf->buf);
  g_free (nf->path);
  g_free (nf);
}

const char *
rr_new_file_get_path (const RrNewFile *nf)
{
  return nf->path;
}

int
rr_new_file_get_fd (const RrNewFile *nf)
{
  return nf->fd;
}
