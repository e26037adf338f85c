/* lock.c - dotlock + fcntl, bounded waits, stale dotlock takeover.
 *
 * Both locks, in procmail's and Postfix's order (dotlock first), because MUAs
 * and MDAs each honour one or the other. Waits poll rather than block so that
 * --lock-timeout bounds them; a busy lock past the timeout is a temporary
 * failure, never a reason to go ahead unlocked. */
#include "config.h"

#include "lock.h"

#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

G_DEFINE_QUARK (rr-lock-error-quark, rr_lock_error)

#define POLL_USEC 50000

struct _RrLock {
  char *dotlock; /* NULL when we hold none */
  int fd;
  char *notice;
};

static gboolean
set_io_error (GError **error, const char *what, const char *path)
{
  int e = errno;

  g_set_error (error, RR_LOCK_ERROR, RR_LOCK_ERROR_IO, "%s %s: %s", what, path, g_strerror (e));
  return FALSE;
}

/* A dotlock is stale when its PID is gone or it is older than @stale s. */
static gboolean
is_stale (const char *dotlock, guint stale, char **why)
{
  g_autofree char *text = NULL;
  struct stat st;
  long pid;

  if (lstat (dotlock, &st) != 0)
    return FALSE;
  if (stale > 0 && time (NULL) - st.st_mtime > (time_t) stale)
    {
      *why = g_strdup_printf ("older than %u s", stale);
      return TRUE;
    }
  if (!g_file_get_contents (dotlock, &text, NULL, NULL))
    return FALSE;
  pid = strtol (text, NULL, 10);
  if (pid > 0 && kill ((pid_t) pid, 0) != 0 && errno == ESRCH)
    {
      *why = g_strdup_printf ("PID %ld no longer runs", pid);
      return TRUE;
    }
  return FALSE;
}

/* The dotlock is made with our PID already in it: written to an unnamed
 * file (O_TMPFILE), then linked to its name. A kill at any moment thus never
 * leaves an empty dotlock, which no PID check could clear and which would
 * hold off every MDA and rerun for --stale-lock seconds. Where the file
 * system has no O_TMPFILE (NFS) or /proc is missing: O_EXCL, then the PID. */
static gboolean
create_dotlock (RrLock *lock, const char *dotlock, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (dotlock);
  char pid[32];
  int n = snprintf (pid, sizeof pid, "%ld\n", (long) getpid ());
  int fd = rr_fs_open (dir, O_WRONLY | O_TMPFILE | O_CLOEXEC, 0644);

  if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return FALSE;
  if (fd >= 0)
    {
      int e;
      if (rr_fs_write_all (fd, pid, n) != 0)
        {
          set_io_error (error, "cannot write", dotlock);
          close (fd);
          return FALSE;
        }
      e = rr_fs_link_fd (fd, dotlock) == 0 ? 0 : errno;
      close (fd);
      if (e == 0)
        {
          lock->dotlock = g_strdup (dotlock);
          return TRUE;
        }
      errno = e;
      if (e != ENOENT)  /* EEXIST: busy */
        return FALSE;
    }
  fd = rr_fs_open (dotlock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return FALSE;
  if (rr_fs_write_all (fd, pid, n) != 0 || close (fd) != 0)
    {
      set_io_error (error, "cannot write", dotlock);
      unlink (dotlock);
      return FALSE;
    }
  lock->dotlock = g_strdup (dotlock);
  return TRUE;
}

static gboolean
timed_out (gint64 deadline)
{
  if (g_get_monotonic_time () >= deadline)
    return TRUE;
  g_usleep (POLL_USEC);
  return FALSE;
}

static gboolean
take_dotlock (RrLock *lock, const char *path, gint64 deadline, guint stale, GError **error)
{
  g_autofree char *dotlock = g_strconcat (path, ".lock", NULL);

  for (;;)
    {
      g_autofree char *why = NULL;
      GError *local = NULL;

      if (create_dotlock (lock, dotlock, &local))
        return TRUE;
      if (local)
        return g_propagate_error (error, local), FALSE;
      if (errno != EEXIST)
        return set_io_error (error, "cannot create", dotlock);
      if (is_stale (dotlock, stale, &why) && rr_fs_unlink (dotlock) == 0)
        {
          g_free (lock->notice);
          lock->notice = g_strdup_printf ("took over stale lock %s (%s)", dotlock, why);
          continue;
        }
      if (timed_out (deadline))
        break;
    }
  g_set_error (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY, "%s is locked (%s exists)", path,
               dotlock);
  return FALSE;
}

static gboolean
take_fcntl (RrLock *lock, const char *path, int fd, gint64 deadline, GError **error)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

  while (fcntl (fd, F_SETLK, &fl) != 0)
    {
      if (errno != EAGAIN && errno != EACCES && errno != EINTR)
        return set_io_error (error, "cannot lock", path);
      if (timed_out (deadline))
        {
          g_set_error (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY,
                       "%s is locked by another process (fcntl)", path);
          return FALSE;
        }
    }
  lock->fd = fd;
  return TRUE;
}

RrLock *
rr_lock_acquire (const char *path, int fd, guint timeout, guint stale, GError **error)
{
  g_autoptr (RrLock) lock = g_new0 (RrLock, 1);
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout * G_USEC_PER_SEC;

  lock->fd = -1;
  if (!take_dotlock (lock, path, deadline, stale, error))
    return NULL;
  if (fd >= 0 && !take_fcntl (lock, path, fd, deadline, error))
    return NULL;
  return g_steal_pointer (&lock);
}

RrLock *
rr_lock_acquire_fcntl (const char *path, int fd, guint timeout, GError **error)
{
  g_autoptr (RrLock) lock = g_new0 (RrLock, 1);
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout * G_USEC_PER_SEC;

  lock->fd = -1;
  if (!take_fcntl (lock, path, fd, deadline, error))
    return NULL;
  return g_steal_pointer (&lock);
}

/* A dotlock older than --stale-lock may have been taken over by another
 * process: remove it only while it still holds our PID. */
static gboolean
still_ours (const char *dotlock)
{
  g_autofree char *text = NULL;

  return g_file_get_contents (dotlock, &text, NULL, NULL)
         && strtol (text, NULL, 10) == (long) getpid ();
}

void
rr_lock_clear_stale (const char *path, guint stale)
{
  g_autofree char *dotlock = g_strconcat (path, ".lock", NULL);
  g_autofree char *why = NULL;

  if (is_stale (dotlock, stale, &why))
    rr_fs_unlink (dotlock);
}

RrLock *
rr_lock_acquire_none (void)
{
  RrLock *lock = g_new0 (RrLock, 1);

  lock->fd = -1;
  return lock;
}

void
rr_lock_release (RrLock *lock)
{
  if (lock == NULL)
    return;
  if (lock->fd >= 0)
    {
      struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
      fcntl (lock->fd, F_SETLK, &fl);
    }
  if (lock->dotlock && still_ours (lock->dotlock))
    unlink (lock->dotlock);
  g_free (lock->dotlock);
  g_free (lock->notice);
  g_free (lock);
}

const char *
rr_lock_get_notice (const RrLock *lock)
{
  return lock->notice;
}
