/* fsutil_test.c - write-new, fsync, publish: exact bytes, modes and times,
 * link never replacing, and real failures (full disk, EIO on fsync and
 * rename, a kill at every step) made by the fault injection compiled into
 * this test (src/fsutil.c with -DRR_FAULT_INJECTION; REROUTE_FAULT is read on
 * every call, and Criterion runs each test in its own process). */
#include "config.h"

#include "fsutil.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gio/gio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *tmpdir;

static void
setup (void)
{
  tmpdir = rr_test_tmpdir_new ("fsutil");
}

static void
teardown (void)
{
  rr_test_tmpdir_free (g_steal_pointer (&tmpdir));
}

TestSuite (fsutil, .init = setup, .fini = teardown);

/* (transfer full) TMPDIR/NAME */
static char *
in_tmp (const char *name)
{
  return g_build_filename (tmpdir, name, NULL);
}

static void
put (const char *name, const char *text)
{
  g_autofree char *path = in_tmp (name);

  cr_assert (g_file_set_contents (path, text, -1, NULL));
}

static RrNewFile *
create (const char *prefix)
{
  GError *error = NULL;
  RrNewFile *nf = rr_new_file_create (tmpdir, prefix, &error);

  cr_assert_not_null (nf, "%s", error ? error->message : "");
  return nf;
}

static void
write_ok (RrNewFile *nf, const void *data, gsize len)
{
  GError *error = NULL;

  cr_assert (rr_new_file_write (nf, data, len, &error), "%s", error ? error->message : "");
}

/* Bytes that differ from one position to the next, so that a dropped,
 * repeated or misplaced block shows. */
static GByteArray *
pattern (gsize len, guint seed)
{
  GByteArray *b = g_byte_array_sized_new (len);

  g_byte_array_set_size (b, len);
  for (gsize i = 0; i < len; i++)
    b->data[i] = (guint8) ((i * 2654435761u + seed) >> 7);
  return b;
}

/* The basic round trip */

Test (fsutil, create_write_finish_rename)
{
  g_autofree char *target = in_tmp ("target");
  g_autofree char *tmp_path = NULL;
  g_autofree char *names = NULL;
  const char *text = "Subject: hi\r\n\r\nbody\n";
  RrNewFile *nf = create ("tmp-");
  GError *error = NULL;
  struct stat st;

  tmp_path = g_strdup (rr_new_file_get_path (nf));
  cr_assert (g_str_has_prefix (tmp_path, tmpdir), "%s", tmp_path);
  cr_assert (g_str_has_prefix (tmp_path + strlen (tmpdir), "/tmp-"), "%s", tmp_path);
  cr_assert_geq (rr_new_file_get_fd (nf), 0);
  cr_assert_eq (lstat (tmp_path, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0600, "created with mode %o", st.st_mode & 07777);
  write_ok (nf, text, 5);
  write_ok (nf, text + 5, 0);
  write_ok (nf, text + 5, strlen (text) - 5);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  cr_assert (rr_new_file_rename (nf, target, &error), "%s", error ? error->message : "");
  rr_new_file_abort (nf);
  rr_test_assert_file (target, text, strlen (text));
  cr_assert_eq (stat (target, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
  names = rr_test_listing (tmpdir);
  cr_assert_str_eq (names, "target", "the directory holds: %s", names);
}

Test (fsutil, finish_copies_mode_and_times_of_like)
{
  g_autofree char *like_path = in_tmp ("like");
  g_autofree char *target = in_tmp ("target");
  struct timespec times[2] = { { 1000000000, 111 }, { 1100000000, 987654321 } };
  RrNewFile *nf = create (NULL);
  GError *error = NULL;
  struct stat like, st;

  put ("like", "old");
  cr_assert_eq (chmod (like_path, 0640), 0);
  cr_assert_eq (utimensat (AT_FDCWD, like_path, times, 0), 0);
  cr_assert_eq (stat (like_path, &like), 0);
  write_ok (nf, "new", 3);
  cr_assert (rr_new_file_finish (nf, &like, &error), "%s", error ? error->message : "");
  cr_assert (rr_new_file_rename (nf, target, &error), "%s", error ? error->message : "");
  rr_new_file_abort (nf);
  cr_assert_eq (stat (target, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
  cr_assert_eq (st.st_mtim.tv_sec, like.st_mtim.tv_sec);
  cr_assert_eq (st.st_mtim.tv_nsec, like.st_mtim.tv_nsec);
  cr_assert_eq (st.st_atim.tv_sec, like.st_atim.tv_sec);
  cr_assert_eq (st.st_uid, like.st_uid);
  cr_assert_eq (st.st_gid, like.st_gid);
  rr_test_assert_file (target, "new", 3);
}

Test (fsutil, rename_replaces_the_target)
{
  g_autofree char *target = in_tmp ("target");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  put ("target", "the old bytes, longer than the new ones\n");
  write_ok (nf, "new\n", 4);
  cr_assert (rr_new_file_finish (nf, NULL, &error));
  cr_assert (rr_new_file_rename (nf, target, &error), "%s", error ? error->message : "");
  rr_new_file_abort (nf);
  rr_test_assert_file (target, "new\n", 4);
  g_autofree char *names = rr_test_listing (tmpdir);
  cr_assert_str_eq (names, "target");
}

/* Writes around and past the 128 KiB buffer */

static void
write_in_pieces (const gsize *sizes, guint n, const char *name)
{
  g_autofree char *target = in_tmp (name);
  gsize total = 0;
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  for (guint i = 0; i < n; i++)
    total += sizes[i];
  g_autoptr (GByteArray) want = pattern (total, n);
  for (gsize i = 0, at = 0; i < n; at += sizes[i], i++)
    write_ok (nf, want->data + at, sizes[i]);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  cr_assert (rr_new_file_rename (nf, target, &error), "%s", error ? error->message : "");
  rr_new_file_abort (nf);
  rr_test_assert_file (target, want->data, want->len);
}

Test (fsutil, large_writes)
{
  const gsize k = 1024;
  const gsize one_big[] = { 3 * 1024 * k + 7 };
  const gsize mixed[] = { 10, 128 * k - 10, 1, 128 * k, 128 * k + 1, 5, 300 * k, 128 * k - 1, 2 };
  const gsize exact[] = { 128 * k, 128 * k };

  write_in_pieces (one_big, G_N_ELEMENTS (one_big), "one-big");
  write_in_pieces (mixed, G_N_ELEMENTS (mixed), "mixed");
  write_in_pieces (exact, G_N_ELEMENTS (exact), "exact");
}

Test (fsutil, many_small_writes)
{
  const guint n = 200000;
  g_autofree gsize *sizes = g_new (gsize, n);

  for (guint i = 0; i < n; i++)
    sizes[i] = 1 + i % 7;  /* 800,000 bytes */
  write_in_pieces (sizes, n, "small");
}

/* link and abort */

Test (fsutil, link_publishes_without_replacing)
{
  g_autofree char *target = in_tmp ("target");
  g_autofree char *taken = in_tmp ("taken");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  put ("taken", "somebody else's message\n");
  write_ok (nf, "mine\n", 5);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  cr_assert_not (rr_new_file_link (nf, taken, &error), "link replaced an existing file");
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS), "%s",
             error ? error->message : "no error");
  cr_assert_not_null (strstr (error->message, taken), "%s", error->message);
  cr_assert_eq (rr_fs_last_errno (), EEXIST);
  g_clear_error (&error);
  rr_test_assert_file (taken, "somebody else's message\n", 24);

  cr_assert (rr_new_file_link (nf, target, &error), "%s", error ? error->message : "");
  rr_new_file_abort (nf);
  rr_test_assert_file (target, "mine\n", 5);
  rr_test_assert_file (taken, "somebody else's message\n", 24);
  g_autofree char *names = rr_test_listing (tmpdir);
  cr_assert_str_eq (names, "taken target", "the directory holds: %s", names);
}

Test (fsutil, abort_removes_the_temporary_file)
{
  RrNewFile *nf = create (NULL);
  RrNewFile *finished = create (NULL);
  g_autofree char *path = g_strdup (rr_new_file_get_path (nf));
  GError *error = NULL;

  write_ok (nf, "partial", 7);
  write_ok (finished, "whole\n", 6);
  cr_assert (rr_new_file_finish (finished, NULL, &error));
  cr_assert_eq (access (path, F_OK), 0);
  rr_new_file_abort (nf);
  rr_new_file_abort (finished);
  rr_new_file_abort (NULL);
  g_autofree char *names = rr_test_listing (tmpdir);
  cr_assert_str_eq (names, "", "left behind: %s", names);
}

/* Errors without injection */

Test (fsutil, create_in_a_missing_directory)
{
  g_autofree char *dir = in_tmp ("absent");
  GError *error = NULL;

  cr_assert_null (rr_new_file_create (dir, NULL, &error));
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND), "%s",
             error ? error->message : "no error");
  cr_assert_not_null (strstr (error->message, dir), "%s", error->message);
  cr_assert_eq (rr_fs_last_errno (), ENOENT);
  g_error_free (error);
}

Test (fsutil, sync_dir_of_a_file_fails)
{
  g_autofree char *file = in_tmp ("file");
  GError *error = NULL;

  put ("file", "x");
  cr_assert (rr_fs_sync_dir (tmpdir, &error), "%s", error ? error->message : "");
  cr_assert_not (rr_fs_sync_dir (file, &error));
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY), "%s",
             error ? error->message : "no error");
  cr_assert_eq (rr_fs_last_errno (), ENOTDIR);
  g_error_free (error);
}

Test (fsutil, unique_names)
{
  g_autofree char *a = rr_fs_unique_name ();
  g_autofree char *b = rr_fs_unique_name ();
  g_autofree char *pid = g_strdup_printf ("P%ld", (long) getpid ());

  cr_assert_str_neq (a, b);
  cr_assert_not_null (strstr (a, pid), "%s", a);
  cr_assert_null (strpbrk (a, "/:"), "%s", a);
  cr_assert (g_ascii_isdigit (a[0]) && strstr (a, ".M") != NULL, "%s", a);
}

/* Injected faults */

static void
fault (const char *spec)
{
  cr_assert (g_setenv ("REROUTE_FAULT", spec, TRUE));
}

/* After a failure and rr_new_file_abort(), the directory holds exactly
 * @names, and "target" (if named) holds @target_bytes. */
static void
assert_left (RrNewFile *nf, const char *names, const char *target_bytes)
{
  g_unsetenv ("REROUTE_FAULT");
  rr_new_file_abort (nf);
  g_autofree char *got = rr_test_listing (tmpdir);
  cr_assert_str_eq (got, names, "the directory holds: %s", got);
  if (target_bytes)
    {
      g_autofree char *target = in_tmp ("target");
      rr_test_assert_file (target, target_bytes, strlen (target_bytes));
    }
}

Test (fsutil, full_disk_fails_finish_for_a_buffered_write)
{
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  fault ("write:1:ENOSPC");
  write_ok (nf, "small, still in the buffer\n", 27);
  cr_assert_not (rr_new_file_finish (nf, NULL, &error));
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE), "%s",
             error ? error->message : "no error");
  cr_assert_eq (rr_fs_last_errno (), ENOSPC);
  cr_assert_not_null (strstr (error->message, rr_new_file_get_path (nf)), "%s", error->message);
  g_error_free (error);
  assert_left (nf, "", NULL);
}

Test (fsutil, full_disk_fails_a_large_write)
{
  g_autoptr (GByteArray) big = pattern (512 * 1024, 1);
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  put ("target", "old\n");
  fault ("write:1:ENOSPC");
  cr_assert_not (rr_new_file_write (nf, big->data, big->len, &error));
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE), "%s",
             error ? error->message : "no error");
  cr_assert_eq (rr_fs_last_errno (), ENOSPC);
  g_error_free (error);
  assert_left (nf, "target", "old\n");
}

Test (fsutil, full_disk_on_a_later_write)
{
  g_autoptr (GByteArray) big = pattern (200 * 1024, 2);
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  fault ("write:2:EDQUOT");
  write_ok (nf, big->data, big->len);  /* write 1 */
  write_ok (nf, "tail", 4);            /* buffered */
  cr_assert_not (rr_new_file_finish (nf, NULL, &error));
  cr_assert_eq (rr_fs_last_errno (), EDQUOT);
  cr_assert_not_null (error);
  g_error_free (error);
  assert_left (nf, "", NULL);
}

Test (fsutil, fsync_failure_fails_finish)
{
  g_autofree char *target = in_tmp ("target");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  put ("target", "old\n");
  fault ("fsync:1:EIO");
  write_ok (nf, "new\n", 4);
  cr_assert_not (rr_new_file_finish (nf, NULL, &error));
  cr_assert_not_null (error);
  cr_assert_eq (error->domain, G_IO_ERROR);
  cr_assert_eq (rr_fs_last_errno (), EIO);
  cr_assert_not_null (strstr (error->message, "fsync"), "%s", error->message);
  g_error_free (error);
  assert_left (nf, "target", "old\n");
}

Test (fsutil, rename_failure_keeps_the_target)
{
  g_autofree char *target = in_tmp ("target");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  put ("target", "old\n");
  fault ("rename:1:EIO");
  write_ok (nf, "new\n", 4);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  cr_assert_not (rr_new_file_rename (nf, target, &error));
  cr_assert_not_null (error);
  cr_assert_eq (error->domain, G_IO_ERROR);
  cr_assert_eq (rr_fs_last_errno (), EIO);
  cr_assert_not_null (strstr (error->message, target), "%s", error->message);
  g_error_free (error);
  assert_left (nf, "target", "old\n");
}

/* The rename happened but the directory fsync failed: the call fails (the
 * rename is not durable), and abort must not remove what is published. */
Test (fsutil, directory_fsync_failure_after_rename)
{
  g_autofree char *target = in_tmp ("target");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  put ("target", "old\n");
  fault ("fsync:2:EIO");
  write_ok (nf, "new\n", 4);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  cr_assert_not (rr_new_file_rename (nf, target, &error));
  cr_assert_eq (rr_fs_last_errno (), EIO);
  cr_assert_not_null (error);
  g_error_free (error);
  assert_left (nf, "target", "new\n");
}

Test (fsutil, link_failure_keeps_nothing)
{
  g_autofree char *target = in_tmp ("target");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  fault ("link:1:EIO");
  write_ok (nf, "new\n", 4);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  cr_assert_not (rr_new_file_link (nf, target, &error));
  cr_assert_eq (rr_fs_last_errno (), EIO);
  cr_assert_not_null (error);
  g_error_free (error);
  assert_left (nf, "", NULL);
}

/* The link is made but the temporary name cannot be removed: after abort,
 * no second name of the message may remain beside the target. */
Test (fsutil, link_then_unlink_failure_leaves_no_temporary_name)
{
  g_autofree char *target = in_tmp ("target");
  RrNewFile *nf = create (NULL);
  GError *error = NULL;

  fault ("unlink:1:EIO");
  write_ok (nf, "new\n", 4);
  cr_assert (rr_new_file_finish (nf, NULL, &error), "%s", error ? error->message : "");
  rr_new_file_link (nf, target, &error);
  g_clear_error (&error);
  assert_left (nf, "target", "new\n");
}

Test (fsutil, create_failure)
{
  GError *error = NULL;

  fault ("open:1:EACCES");
  cr_assert_null (rr_new_file_create (tmpdir, NULL, &error));
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED), "%s",
             error ? error->message : "no error");
  cr_assert_eq (rr_fs_last_errno (), EACCES);
  g_error_free (error);
  g_unsetenv ("REROUTE_FAULT");
  g_autofree char *names = rr_test_listing (tmpdir);
  cr_assert_str_eq (names, "");
}

/* A process killed just before its Nth file-system mutation (1 create,
 * 2 write, 3 fsync, 4 rename, 5 directory fsync) leaves the target with the
 * old bytes up to the rename and the new ones, whole, after it. */
Test (fsutil, kill_at_every_step_leaves_old_or_new_bytes)
{
  g_autoptr (GByteArray) fresh = pattern (300 * 1024, 3);
  g_autofree char *target = in_tmp ("target");
  const char *old = "the old message\n";

  for (guint step = 1; step <= 6; step++)
    {
      g_autofree char *spec = g_strdup_printf ("kill:%u", step);
      g_autofree char *got = NULL;
      gsize got_len;
      int status;
      pid_t pid;

      put ("target", old);
      pid = fork ();
      cr_assert_neq (pid, -1);
      if (pid == 0)
        {
          RrNewFile *nf;
          g_setenv ("REROUTE_FAULT", spec, TRUE);
          if ((nf = rr_new_file_create (tmpdir, NULL, NULL)) == NULL
              || !rr_new_file_write (nf, fresh->data, fresh->len, NULL)
              || !rr_new_file_finish (nf, NULL, NULL)
              || !rr_new_file_rename (nf, target, NULL))
            _exit (1);
          _exit (0);
        }
      cr_assert_eq (waitpid (pid, &status, 0), pid);
      cr_assert (g_file_get_contents (target, &got, &got_len, NULL));
      if (step <= 5)
        cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
                   "step %u: not killed (status %d)", step, status);
      else
        cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                   "step %u: the run did not finish (status %d)", step, status);
      if (step <= 4)
        cr_assert (got_len == strlen (old) && memcmp (got, old, got_len) == 0,
                   "step %u: target changed before the rename", step);
      else
        cr_assert (got_len == fresh->len && memcmp (got, fresh->data, got_len) == 0,
                   "step %u: target is not the new message", step);
    }
}
