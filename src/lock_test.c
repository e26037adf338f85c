/* lock_test.c - dotlock + fcntl as other processes see them: the PID in the
 * dotlock, the fcntl lock seen from a forked child, busy locks held by live
 * children timing out, and stale dotlocks (dead PID, too old) taken over.
 * Timeouts are measured loosely (>= 0.9 s and < 5 s for a 1 s timeout). */
#include "config.h"

#include "lock.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *tmpdir;
static char *mbox;     /* TMPDIR/mbox */
static char *dotlock;  /* TMPDIR/mbox.lock */
static pid_t child = -1;

static void
setup (void)
{
  tmpdir = rr_test_tmpdir_new ("lock");
  mbox = g_build_filename (tmpdir, "mbox", NULL);
  dotlock = g_strconcat (mbox, ".lock", NULL);
  cr_assert (g_file_set_contents (mbox, "From a@b Sat Jan  1 12:00:00 2000\n\nx\n", -1, NULL));
}

static void
teardown (void)
{
  if (child > 0)
    {
      kill (child, SIGKILL);
      waitpid (child, NULL, 0);
    }
  rr_test_tmpdir_free (g_steal_pointer (&tmpdir));
  g_free (mbox);
  g_free (dotlock);
}

TestSuite (lock, .init = setup, .fini = teardown);

static int
open_mbox (void)
{
  int fd = open (mbox, O_RDWR | O_CLOEXEC);

  cr_assert (fd >= 0, "open %s: %s", mbox, g_strerror (errno));
  return fd;
}

/* A child that only sleeps (killed by teardown, or at most 60 s later). */
static pid_t
sleeping_child (void)
{
  pid_t pid = fork ();

  cr_assert_neq (pid, -1);
  if (pid == 0)
    {
      sleep (60);
      _exit (0);
    }
  return child = pid;
}

static void
stop_child (void)
{
  int status;

  cr_assert_eq (kill (child, SIGKILL), 0);
  cr_assert_eq (waitpid (child, &status, 0), child);
  child = -1;
}

/* A PID that ran a moment ago and runs no more. */
static pid_t
dead_pid (void)
{
  pid_t pid = fork ();
  int status;

  cr_assert_neq (pid, -1);
  if (pid == 0)
    _exit (0);
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (kill (pid, 0) != 0 && errno == ESRCH);
  return pid;
}

static void
write_dotlock (pid_t pid)
{
  g_autofree char *text = g_strdup_printf ("%ld\n", (long) pid);

  cr_assert (g_file_set_contents (dotlock, text, -1, NULL));
}

static void
assert_dotlock_holds (pid_t pid)
{
  g_autofree char *text = NULL;
  g_autofree char *want = g_strdup_printf ("%ld\n", (long) pid);

  cr_assert (g_file_get_contents (dotlock, &text, NULL, NULL), "%s is missing", dotlock);
  cr_assert_str_eq (text, want);
}

/* What a forked child sees of the mbox's fcntl locks: 0 when it is free,
 * else the PID holding a write lock on it. -1 when F_SETLK disagrees with
 * F_GETLK. */
static long
fcntl_holder (void)
{
  pid_t pid = fork ();
  int status;

  cr_assert_neq (pid, -1);
  if (pid == 0)
    {
      struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
      struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
      int fd = open (mbox, O_RDWR);
      int set;

      if (fd < 0 || fcntl (fd, F_GETLK, &fl) != 0)
        _exit (3);
      set = fcntl (fd, F_SETLK, &w);
      if (fl.l_type == F_UNLCK)
        _exit (set == 0 ? 0 : 2);
      if (fl.l_type != F_WRLCK || set == 0 || (errno != EAGAIN && errno != EACCES))
        _exit (2);
      _exit (fl.l_pid == getppid () ? 1 : 4);
    }
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status), "the checking child crashed");
  switch (WEXITSTATUS (status))
    {
    case 0: return 0;
    case 1: return getpid ();
    case 4: return -2;  /* held, but by another PID */
    default: return -1;
    }
}

static double
seconds_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
}

Test (lock, acquire_and_release_a_free_mbox)
{
  int fd = open_mbox ();
  GError *error = NULL;
  RrLock *lock;

  cr_assert_eq (fcntl_holder (), 0, "the mbox starts unlocked");
  lock = rr_lock_acquire (mbox, fd, 1, 300, &error);
  cr_assert_not_null (lock, "%s", error ? error->message : "");
  assert_dotlock_holds (getpid ());
  cr_assert_eq (fcntl_holder (), getpid (), "no fcntl write lock held by us");
  cr_assert_null (rr_lock_get_notice (lock), "nothing stale was taken over");
  rr_lock_release (lock);
  cr_assert_neq (access (dotlock, F_OK), 0, "the dotlock is still there");
  cr_assert_eq (fcntl_holder (), 0, "the fcntl lock is still held");
  rr_lock_release (NULL);
  close (fd);
}

Test (lock, dotlock_only_without_fd)
{
  GError *error = NULL;
  RrLock *lock = rr_lock_acquire (mbox, -1, 1, 300, &error);

  cr_assert_not_null (lock, "%s", error ? error->message : "");
  assert_dotlock_holds (getpid ());
  cr_assert_eq (fcntl_holder (), 0, "no fd, no fcntl lock");
  rr_lock_release (lock);
  cr_assert_neq (access (dotlock, F_OK), 0);
}

Test (lock, dotlock_of_a_live_process_is_busy)
{
  int fd = open_mbox ();
  pid_t holder = sleeping_child ();
  GError *error = NULL;
  gint64 start;
  double took;

  write_dotlock (holder);
  start = g_get_monotonic_time ();
  cr_assert_null (rr_lock_acquire (mbox, fd, 1, 300, &error), "took a live lock");
  took = seconds_since (start);
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY), "%s",
             error ? error->message : "no error");
  cr_assert_not_null (strstr (error->message, mbox), "%s", error->message);
  cr_assert (took >= 0.9 && took < 5, "gave up after %.2f s", took);
  assert_dotlock_holds (holder);
  cr_assert_eq (fcntl_holder (), 0, "an fcntl lock was left behind");
  g_error_free (error);
  stop_child ();
  close (fd);
}

Test (lock, timeout_zero_tries_once)
{
  int fd = open_mbox ();
  pid_t holder = sleeping_child ();
  GError *error = NULL;
  gint64 start;

  write_dotlock (holder);
  start = g_get_monotonic_time ();
  cr_assert_null (rr_lock_acquire (mbox, fd, 0, 300, &error));
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY));
  cr_assert_lt (seconds_since (start), 0.9);
  assert_dotlock_holds (holder);
  g_error_free (error);
  close (fd);
}

/* A child holding an fcntl lock (as a MUA that does not dotlock would) */
static pid_t
fcntl_child (void)
{
  int ready[2];
  char c;
  pid_t pid;

  cr_assert_eq (pipe (ready), 0);
  pid = fork ();
  cr_assert_neq (pid, -1);
  if (pid == 0)
    {
      struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
      int fd = open (mbox, O_RDWR);
      if (fd < 0 || fcntl (fd, F_SETLK, &fl) != 0)
        _exit (1);
      if (write (ready[1], "x", 1) != 1)
        _exit (1);
      sleep (60);
      _exit (0);
    }
  close (ready[1]);
  cr_assert_eq (read (ready[0], &c, 1), 1, "the child could not lock");
  close (ready[0]);
  return child = pid;
}

Test (lock, fcntl_lock_of_a_live_process_is_busy)
{
  int fd = open_mbox ();
  GError *error = NULL;
  gint64 start;
  double took;

  fcntl_child ();
  start = g_get_monotonic_time ();
  cr_assert_null (rr_lock_acquire (mbox, fd, 1, 300, &error), "took a held fcntl lock");
  took = seconds_since (start);
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY), "%s",
             error ? error->message : "no error");
  cr_assert (took >= 0.9 && took < 5, "gave up after %.2f s", took);
  cr_assert_neq (access (dotlock, F_OK), 0, "our dotlock was left behind");
  cr_assert_eq (fcntl_holder (), -2, "the child's lock is gone");
  g_error_free (error);
  stop_child ();
  close (fd);
}

Test (lock, fcntl_only_lock)
{
  int fd = open_mbox ();
  GError *error = NULL;
  RrLock *lock = rr_lock_acquire_fcntl (mbox, fd, 1, &error);

  cr_assert_not_null (lock, "%s", error ? error->message : "");
  cr_assert_neq (access (dotlock, F_OK), 0, "an fcntl-only lock made a dotlock");
  cr_assert_eq (fcntl_holder (), getpid ());
  rr_lock_release (lock);
  cr_assert_eq (fcntl_holder (), 0);
  close (fd);
}

Test (lock, fcntl_only_lock_busy)
{
  int fd = open_mbox ();
  GError *error = NULL;
  gint64 start;
  double took;

  fcntl_child ();
  start = g_get_monotonic_time ();
  cr_assert_null (rr_lock_acquire_fcntl (mbox, fd, 1, &error));
  took = seconds_since (start);
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY), "%s",
             error ? error->message : "no error");
  cr_assert (took >= 0.9 && took < 5, "gave up after %.2f s", took);
  g_error_free (error);
  stop_child ();
  close (fd);
}

/* Stale dotlocks */

Test (lock, dotlock_of_a_dead_pid_is_taken_over)
{
  int fd = open_mbox ();
  pid_t dead = dead_pid ();
  g_autofree char *pid_text = g_strdup_printf ("%ld", (long) dead);
  GError *error = NULL;
  RrLock *lock;

  write_dotlock (dead);
  lock = rr_lock_acquire (mbox, fd, 1, 300, &error);
  cr_assert_not_null (lock, "%s", error ? error->message : "");
  cr_assert_not_null (rr_lock_get_notice (lock), "the takeover is not reported");
  cr_assert_not_null (strstr (rr_lock_get_notice (lock), "stale"), "%s",
                      rr_lock_get_notice (lock));
  cr_assert_not_null (strstr (rr_lock_get_notice (lock), pid_text), "%s",
                      rr_lock_get_notice (lock));
  assert_dotlock_holds (getpid ());
  cr_assert_eq (fcntl_holder (), getpid ());
  rr_lock_release (lock);
  cr_assert_neq (access (dotlock, F_OK), 0);
  close (fd);
}

Test (lock, old_dotlock_is_taken_over_even_if_its_pid_runs)
{
  int fd = open_mbox ();
  pid_t holder = sleeping_child ();
  struct timespec past[2] = { { time (NULL) - 600, 0 }, { time (NULL) - 600, 0 } };
  GError *error = NULL;
  RrLock *lock;

  write_dotlock (holder);
  cr_assert_eq (utimensat (AT_FDCWD, dotlock, past, 0), 0);
  lock = rr_lock_acquire (mbox, fd, 1, 300, &error);
  cr_assert_not_null (lock, "%s", error ? error->message : "");
  cr_assert_not_null (rr_lock_get_notice (lock));
  cr_assert_not_null (strstr (rr_lock_get_notice (lock), "stale"), "%s",
                      rr_lock_get_notice (lock));
  assert_dotlock_holds (getpid ());
  rr_lock_release (lock);
  stop_child ();
  close (fd);
}

Test (lock, young_dotlock_of_a_live_pid_is_not_stale)
{
  pid_t holder = sleeping_child ();
  struct timespec past[2] = { { time (NULL) - 100, 0 }, { time (NULL) - 100, 0 } };
  GError *error = NULL;

  write_dotlock (holder);
  cr_assert_eq (utimensat (AT_FDCWD, dotlock, past, 0), 0);
  cr_assert_null (rr_lock_acquire (mbox, -1, 1, 300, &error), "100 s is not older than 300 s");
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY));
  assert_dotlock_holds (holder);
  g_error_free (error);
  stop_child ();
}

/* Another MUA's dotlock may hold no PID at all: only its age makes it stale. */
Test (lock, dotlock_without_pid_is_busy)
{
  GError *error = NULL;

  cr_assert (g_file_set_contents (dotlock, "", 0, NULL));
  cr_assert_null (rr_lock_acquire (mbox, -1, 1, 300, &error));
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY), "%s",
             error ? error->message : "no error");
  cr_assert_eq (access (dotlock, F_OK), 0, "someone else's dotlock was removed");
  g_error_free (error);
}

Test (lock, dotlock_in_a_missing_directory_is_an_io_error)
{
  g_autofree char *path = g_build_filename (tmpdir, "absent", "mbox", NULL);
  GError *error = NULL;
  gint64 start = g_get_monotonic_time ();

  cr_assert_null (rr_lock_acquire (path, -1, 5, 300, &error));
  cr_assert (g_error_matches (error, RR_LOCK_ERROR, RR_LOCK_ERROR_IO), "%s",
             error ? error->message : "no error");
  cr_assert_lt (seconds_since (start), 4.5, "an I/O error is not waited out");
  cr_assert_not_null (strstr (error->message, path), "%s", error->message);
  g_error_free (error);
}
