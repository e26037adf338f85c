/* lockhold.c - a test helper that locks an mbox the way an MDA does, for
 * cmd/lock_test.sh.
 *
 *   lockhold dotlock|fcntl|both MBOX SECONDS
 *       takes the dotlock MBOX.lock (created with O_EXCL, holding our PID),
 *       an fcntl write lock on the whole of MBOX, or both (dotlock first, as
 *       Postfix's local(8) does), prints "locked" once they are held, holds
 *       them for SECONDS (a decimal fraction is allowed) or until SIGTERM or
 *       SIGINT, then releases them.
 *   lockhold append MBOX FILE
 *       takes both locks, waiting for them, appends FILE's bytes to MBOX,
 *       fsyncs it and releases the locks.
 *
 * A busy lock is waited for, polling, for up to 60 seconds (exit 75 after
 * that). The append checks, before it lets go of the locks, that MBOX is
 * still the file it appended to: a writer that renamed a new file over MBOX
 * while we held the locks (or that did not wait for them) would have made
 * the append go to a file no longer in place, and that exits 3. No stale
 * lock is ever broken here: the tests make the locks this program meets.
 *
 * Exit status: 0 done, 1 error, 2 usage, 3 append to a replaced file,
 * 75 lock not obtained in time. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_LIMIT_MS 60000
#define POLL_MS 10

static volatile sig_atomic_t stop;
static char dotlock[4096];
static int have_dotlock;

static void
on_signal (int sig)
{
  (void) sig;
  stop = 1;
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

  while (nanosleep (&ts, &ts) < 0 && errno == EINTR && !stop)
    ;
}

static int
fail (const char *what, const char *path)
{
  fprintf (stderr, "lockhold: %s %s: %s\n", what, path, strerror (errno));
  return 1;
}

static int
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = write (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      buf += n;
      len -= (size_t) n;
    }
  return 0;
}

/* 0 when the dotlock is ours, 75 after the wait limit, 1 on error. */
static int
take_dotlock (const char *mbox)
{
  char pid[32];
  long waited = 0;
  int fd;

  if (snprintf (dotlock, sizeof dotlock, "%s.lock", mbox) >= (int) sizeof dotlock)
    {
      fprintf (stderr, "lockhold: %s: path too long\n", mbox);
      return 1;
    }
  while ((fd = open (dotlock, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0)
    {
      if (errno != EEXIST)
        return fail ("cannot create", dotlock);
      if (waited >= WAIT_LIMIT_MS || stop)
        {
          fprintf (stderr, "lockhold: %s: still locked after %ld ms\n", dotlock, waited);
          return 75;
        }
      sleep_ms (POLL_MS);
      waited += POLL_MS;
    }
  have_dotlock = 1;
  snprintf (pid, sizeof pid, "%ld\n", (long) getpid ());
  if (write_all (fd, pid, strlen (pid)) < 0 || close (fd) < 0)
    return fail ("cannot write", dotlock);
  return 0;
}

static void
drop_dotlock (void)
{
  if (have_dotlock && unlink (dotlock) < 0)
    fail ("cannot remove", dotlock);
  have_dotlock = 0;
}

/* 0 when the fcntl lock on @fd is ours, 75 after the wait limit, 1 on error. */
static int
take_fcntl (int fd, const char *mbox)
{
  struct flock fl;
  long waited = 0;

  memset (&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  while (fcntl (fd, F_SETLK, &fl) < 0)
    {
      if (errno != EACCES && errno != EAGAIN && errno != EINTR)
        return fail ("cannot lock", mbox);
      if (waited >= WAIT_LIMIT_MS || stop)
        {
          fprintf (stderr, "lockhold: %s: fcntl lock still held after %ld ms\n", mbox, waited);
          return 75;
        }
      sleep_ms (POLL_MS);
      waited += POLL_MS;
    }
  return 0;
}

static void
drop_fcntl (int fd)
{
  struct flock fl;

  memset (&fl, 0, sizeof fl);
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fcntl (fd, F_SETLK, &fl);
}

static int
hold (const char *mode, const char *mbox, const char *seconds)
{
  int dot = strcmp (mode, "dotlock") == 0 || strcmp (mode, "both") == 0;
  int kernel = strcmp (mode, "fcntl") == 0 || strcmp (mode, "both") == 0;
  char *end;
  double secs = strtod (seconds, &end);
  long left;
  int fd = -1, rc;

  if (*seconds == '\0' || *end != '\0' || secs < 0)
    {
      fprintf (stderr, "lockhold: bad SECONDS: %s\n", seconds);
      return 2;
    }
  if (dot && (rc = take_dotlock (mbox)) != 0)
    return rc;
  if (kernel)
    {
      if ((fd = open (mbox, O_RDWR)) < 0)
        {
          rc = fail ("cannot open", mbox);
          drop_dotlock ();
          return rc;
        }
      if ((rc = take_fcntl (fd, mbox)) != 0)
        {
          drop_dotlock ();
          return rc;
        }
    }
  printf ("locked\n");
  fflush (stdout);
  for (left = (long) (secs * 1000); left > 0 && !stop; left -= POLL_MS)
    sleep_ms (left < POLL_MS ? left : POLL_MS);
  if (fd >= 0)
    {
      drop_fcntl (fd);
      close (fd);
    }
  drop_dotlock ();
  return 0;
}

static int
append (const char *mbox, const char *file)
{
  struct stat held, now;
  char buf[65536];
  ssize_t n;
  int in, fd, rc = 0;

  if ((in = open (file, O_RDONLY)) < 0)
    return fail ("cannot open", file);
  if ((rc = take_dotlock (mbox)) != 0)
    return rc;
  if ((fd = open (mbox, O_WRONLY | O_APPEND | O_NOFOLLOW)) < 0)
    {
      rc = fail ("cannot open", mbox);
      drop_dotlock ();
      return rc;
    }
  if ((rc = take_fcntl (fd, mbox)) != 0)
    {
      drop_dotlock ();
      return rc;
    }
  while (rc == 0 && (n = read (in, buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        rc = fail ("cannot read", file);
      else if (write_all (fd, buf, (size_t) n) < 0)
        rc = fail ("cannot append to", mbox);
    }
  if (rc == 0 && fsync (fd) < 0)
    rc = fail ("cannot fsync", mbox);
  if (rc == 0 && (fstat (fd, &held) < 0 || stat (mbox, &now) < 0))
    rc = fail ("cannot stat", mbox);
  if (rc == 0 && (held.st_ino != now.st_ino || held.st_dev != now.st_dev))
    {
      fprintf (stderr, "lockhold: %s was replaced while it was locked: "
               "the append went to the old file\n", mbox);
      rc = 3;
    }
  drop_fcntl (fd);
  close (fd);
  close (in);
  drop_dotlock ();
  return rc;
}

int
main (int argc, char **argv)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);

  if (argc == 4 && (strcmp (argv[1], "dotlock") == 0 || strcmp (argv[1], "fcntl") == 0
                    || strcmp (argv[1], "both") == 0))
    return hold (argv[1], argv[2], argv[3]);
  if (argc == 4 && strcmp (argv[1], "append") == 0)
    return append (argv[2], argv[3]);
  fprintf (stderr, "usage: lockhold dotlock|fcntl|both MBOX SECONDS\n"
                   "       lockhold append MBOX FILE\n");
  return 2;
}
