/* maildir_test.c - size fields in names, the walk (order, Maildir++
 * subfolders, what is skipped) and in-place replacement, including real
 * failures made by fsutil's fault injection (REROUTE_FAULT; this test is
 * built with src/fsutil.c and -DRR_FAULT_INJECTION). Criterion runs each test
 * in its own process, so a g_setenv() here affects that test only. */
#include "config.h"

#include "maildir.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmpdir;

static void
setup (void)
{
  tmpdir = rr_test_tmpdir_new ("maildir");
}

static void
teardown (void)
{
  rr_test_tmpdir_free (g_steal_pointer (&tmpdir));
}

TestSuite (maildir, .init = setup, .fini = teardown);

/* (transfer full) TMPDIR/REL, made with its parents. */
static char *
make_dir (const char *rel)
{
  char *path = g_build_filename (tmpdir, rel, NULL);

  cr_assert_eq (g_mkdir_with_parents (path, 0700), 0, "mkdir %s: %s", path, g_strerror (errno));
  return path;
}

static void
put (const char *rel, const char *text)
{
  g_autofree char *path = g_build_filename (tmpdir, rel, NULL);
  GError *error = NULL;

  cr_assert (g_file_set_contents (path, text, -1, &error), "%s", error ? error->message : "");
}

/* (transfer full) A Maildir TMPDIR/REL with cur/ and new/, and tmp/ if
 * @with_tmp. */
static char *
make_maildir (const char *rel, gboolean with_tmp)
{
  char *root = make_dir (rel);
  const char *subs[] = { "cur", "new", "tmp" };

  for (guint i = 0; i < (with_tmp ? 3u : 2u); i++)
    {
      g_autofree char *p = g_build_filename (root, subs[i], NULL);
      cr_assert_eq (mkdir (p, 0700), 0, "mkdir %s: %s", p, g_strerror (errno));
    }
  return root;
}

/* Size fields in names */

Test (maildir, name_with_sizes)
{
  static const struct { const char *name; gsize s, w; const char *want; } cases[] = {
    { "1.M2P3.host,S=100,W=110:2,S", 5, 7, "1.M2P3.host,S=5,W=7:2,S" },
    { "1.M2P3.host,W=110,S=100:2,", 5, 7, "1.M2P3.host,W=7,S=5:2," },
    { "1.M2P3.host,S=100:2,RS", 123456, 0, "1.M2P3.host,S=123456:2,RS" },
    { "1.M2P3.host,S=100!2,S", 5, 7, "1.M2P3.host,S=5!2,S" },
    { "1.M2P3.host,S=100,W=110;2,S", 5, 7, "1.M2P3.host,S=5,W=7;2,S" },
    { "1.M2P3.host,S=100,W=110", 0, 0, "1.M2P3.host,S=0,W=0" },
    { "1.M2P3.host:2,S", 5, 7, "1.M2P3.host:2,S" },
    { "1.M2P3.host", 5, 7, "1.M2P3.host" },
    { "x:2,S=5", 9, 9, "x:2,S=5" },
    { "x!2,S=5", 9, 9, "x!2,S=5" },
    { "x;2,S=5,W=6", 9, 9, "x;2,S=5,W=6" },
    { "x,S=1:2,S=5,W=6", 9, 10, "x,S=9:2,S=5,W=6" },
    { "x,S=:2,S", 9, 9, "x,S=:2,S" },
    { "x,S=abc:2,S", 9, 9, "x,S=abc:2,S" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = rr_maildir_name_with_sizes (cases[i].name, cases[i].s, cases[i].w);
      cr_assert_str_eq (got, cases[i].want, "%s -> %s", cases[i].name, got);
    }
}

Test (maildir, is_maildir)
{
  g_autofree char *md = make_maildir ("md", FALSE);
  g_autofree char *only_cur = make_dir ("only-cur/cur");
  g_autofree char *file_cur = make_dir ("file-cur/new");
  g_autofree char *p1 = g_build_filename (tmpdir, "only-cur", NULL);
  g_autofree char *p2 = g_build_filename (tmpdir, "file-cur", NULL);
  g_autofree char *p3 = g_build_filename (tmpdir, "absent", NULL);
  g_autofree char *p4 = g_build_filename (tmpdir, "plain", NULL);

  put ("file-cur/cur", "not a directory\n");
  put ("plain", "a file\n");
  cr_assert (rr_maildir_is_maildir (md));
  cr_assert_not (rr_maildir_is_maildir (p1), "new/ is missing");
  cr_assert_not (rr_maildir_is_maildir (p2), "cur is a file");
  cr_assert_not (rr_maildir_is_maildir (p3));
  cr_assert_not (rr_maildir_is_maildir (p4));
}

/* The walk */

typedef struct {
  GString *seen;
  const char *root;
  guint stop_after; /* 0: never stop */
  guint count;
  GString *errors;
  gboolean go_on_after_error;
} Walk;

static gboolean
record (const RrMaildirEntry *e, gpointer data, GError **error)
{
  Walk *w = data;
  g_autofree char *path = g_build_filename (e->folder, e->sub, e->name, NULL);
  const char *folder = e->folder + strlen (w->root);

  cr_assert (g_str_has_prefix (e->folder, w->root), "%s", e->folder);
  cr_assert_str_eq (e->path, path);
  g_string_append_printf (w->seen, "%s%s/%s/%s", w->seen->len ? " " : "",
                          *folder ? folder + 1 : ".", e->sub, e->name);
  if (++w->count == w->stop_after)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "stopped at %s", e->name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
record_error (const RrMaildirEntry *e, gpointer data, GError **error)
{
  Walk *w = data;

  cr_assert_not_null (error);
  cr_assert_not_null (*error, "on_error gets the error");
  g_string_append_printf (w->errors, "%s%s|%s|%s", w->errors->len ? " " : "", e->sub,
                          e->path, (*error)->message);
  return w->go_on_after_error;
}

/* A Maildir with subfolders .A and .Sub, a dot-dir that is no Maildir,
 * dot-files, and files in tmp/ that are no messages yet. */
static char *
make_tree (void)
{
  char *root = make_maildir ("Mail", TRUE);
  g_autofree char *a = make_maildir ("Mail/.A", FALSE);
  g_autofree char *sub = make_maildir ("Mail/.Sub", TRUE);
  g_autofree char *notmd = make_dir ("Mail/.notamaildir/new");
  g_autofree char *nested = make_maildir ("Mail/.Sub/.Deeper", FALSE);

  put ("Mail/new/b", "b");
  put ("Mail/new/a", "a");
  put ("Mail/cur/c:2,S", "c");
  put ("Mail/cur/.hidden", "h");
  put ("Mail/tmp/t", "t");
  put ("Mail/dovecot-uidlist", "u");
  put ("Mail/.dovecot.index", "i");
  put ("Mail/.A/cur/f:2,", "f");
  put ("Mail/.Sub/new/d", "d");
  put ("Mail/.Sub/cur/e:2,RS", "e");
  put ("Mail/.Sub/tmp/t2", "t");
  put ("Mail/.notamaildir/new/g", "g");
  put ("Mail/.Sub/.Deeper/new/h", "h");
  return root;
}

Test (maildir, walk_order_and_subfolders)
{
  g_autofree char *root = make_tree ();
  Walk w = { g_string_new (NULL), root, 0, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  cr_assert (rr_maildir_walk (root, TRUE, record, record_error, NULL, &w, &error), "%s",
             error ? error->message : "");
  cr_assert_str_eq (w.seen->str, "./new/a ./new/b ./cur/c:2,S .A/cur/f:2, .Sub/new/d "
                                 ".Sub/cur/e:2,RS");
  cr_assert_str_eq (w.errors->str, "");
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

static gboolean
record_dir (const RrMaildirEntry *e, gpointer data, GError **error G_GNUC_UNUSED)
{
  Walk *w = data;
  const char *folder = e->folder + strlen (w->root);
  g_autofree char *dir = g_build_filename (e->folder, e->sub, NULL);

  cr_assert_null (e->name);
  cr_assert_str_eq (e->path, dir);
  g_string_append_printf (w->seen, "%s[%s/%s]", w->seen->len ? " " : "",
                          *folder ? folder + 1 : ".", e->sub);
  return TRUE;
}

/* on_dir comes before each new/ and cur/ is read, so before its messages. */
Test (maildir, walk_announces_each_directory_first)
{
  g_autofree char *root = make_tree ();
  Walk w = { g_string_new (NULL), root, 0, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  cr_assert (rr_maildir_walk (root, TRUE, record, record_error, record_dir, &w, &error));
  cr_assert_str_eq (w.seen->str, "[./new] ./new/a ./new/b [./cur] ./cur/c:2,S [.A/new] "
                                 "[.A/cur] .A/cur/f:2, [.Sub/new] .Sub/new/d [.Sub/cur] "
                                 ".Sub/cur/e:2,RS");
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

/* A directory bigger than a pass is read in passes, each in name order and
 * announced; names created meanwhile after the last one are met. */
Test (maildir, walk_reads_a_big_directory_in_passes)
{
  g_autofree char *root = make_maildir ("Mail", FALSE);
  const char *names[] = { "n5", "n2", "n8", "n1", "n7", "n3", "n6", "n4" };
  Walk w = { g_string_new (NULL), root, 0, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *rel = g_strconcat ("Mail/new/", names[i], NULL);
      put (rel, names[i]);
    }
  rr_maildir_set_walk_batch (3);
  cr_assert (rr_maildir_walk (root, TRUE, record, record_error, record_dir, &w, &error));
  cr_assert_str_eq (w.seen->str, "[./new] ./new/n1 ./new/n2 ./new/n3 [./new] ./new/n4 ./new/n5 "
                                 "./new/n6 [./new] ./new/n7 ./new/n8 [./cur]");
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

static gboolean
shrink (const RrMaildirEntry *e, gpointer data, GError **error)
{
  struct stat st;
  struct iovec iov = { (void *) "xy", 2 };

  cr_assert_not_null (e->dir);
  cr_assert_eq (stat (e->path, &st), 0);
  return record (e, data, error) && rr_maildir_replace (e, &st, &iov, 1, error);
}

/* A message rewritten under a new name that sorts after the pass's last
 * name is not met again by the next pass. */
Test (maildir, walk_does_not_meet_a_renamed_message_again)
{
  g_autofree char *root = make_maildir ("Mail", TRUE);
  g_autofree char *cur = g_build_filename (root, "cur", NULL);
  Walk w = { g_string_new (NULL), root, 0, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  put ("Mail/cur/a,S=1:2,S", "a");
  put ("Mail/cur/b,S=1:2,S", "b");
  put ("Mail/cur/c,S=1:2,S", "c");
  rr_maildir_set_walk_batch (2);
  cr_assert (rr_maildir_walk (root, FALSE, shrink, record_error, NULL, &w, &error), "%s",
             error ? error->message : "");
  cr_assert_str_eq (w.seen->str, "./cur/a,S=1:2,S ./cur/b,S=1:2,S ./cur/c,S=1:2,S");
  g_autofree char *names = rr_test_listing (cur);
  cr_assert_str_eq (names, "a,S=2:2,S b,S=2:2,S c,S=2:2,S");
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

Test (maildir, walk_without_recursion)
{
  g_autofree char *root = make_tree ();
  Walk w = { g_string_new (NULL), root, 0, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  cr_assert (rr_maildir_walk (root, FALSE, record, record_error, NULL, &w, &error));
  cr_assert_str_eq (w.seen->str, "./new/a ./new/b ./cur/c:2,S");
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

Test (maildir, walk_stops_when_the_callback_says_so)
{
  g_autofree char *root = make_tree ();
  Walk w = { g_string_new (NULL), root, 4, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  cr_assert_not (rr_maildir_walk (root, TRUE, record, record_error, NULL, &w, &error));
  cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  cr_assert_str_eq (error->message, "stopped at f:2,");
  cr_assert_str_eq (w.seen->str, "./new/a ./new/b ./cur/c:2,S .A/cur/f:2,");
  g_error_free (error);
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

Test (maildir, walk_of_an_empty_maildir_and_missing_new)
{
  g_autofree char *root = make_dir ("Only/cur");
  g_autofree char *top = g_build_filename (tmpdir, "Only", NULL);
  Walk w = { g_string_new (NULL), top, 0, 0, g_string_new (NULL), TRUE };
  GError *error = NULL;

  put ("Only/cur/x:2,", "x");
  cr_assert (rr_maildir_walk (top, TRUE, record, record_error, NULL, &w, &error));
  cr_assert_str_eq (w.seen->str, "./cur/x:2,", "a missing new/ is no error");
  cr_assert_str_eq (w.errors->str, "");
  g_string_free (w.seen, TRUE);
  g_string_free (w.errors, TRUE);
}

/* A folder that cannot be read (here cur/ is a file: opendir fails with
 * ENOTDIR even for root) goes to on_error; the walk goes on or stops as
 * on_error says. */
Test (maildir, walk_passes_unreadable_folders_to_on_error)
{
  g_autofree char *root = make_dir ("Broken/new");
  g_autofree char *top = g_build_filename (tmpdir, "Broken", NULL);
  g_autofree char *sub = make_maildir ("Broken/.Ok", FALSE);
  g_autofree char *cur = g_build_filename (top, "cur", NULL);
  GError *error = NULL;

  put ("Broken/cur", "not a directory");
  put ("Broken/new/n", "n");
  put ("Broken/.Ok/new/m", "m");
  {
    Walk w = { g_string_new (NULL), top, 0, 0, g_string_new (NULL), TRUE };
    g_autofree char *want = g_strdup_printf ("cur|%s|", cur);

    cr_assert (rr_maildir_walk (top, TRUE, record, record_error, NULL, &w, &error), "%s",
               error ? error->message : "");
    cr_assert_str_eq (w.seen->str, "./new/n .Ok/new/m");
    cr_assert (g_str_has_prefix (w.errors->str, want), "%s", w.errors->str);
    cr_assert_not_null (strstr (w.errors->str + strlen (want), cur), "the message names %s: %s",
                        cur, w.errors->str);
    g_string_free (w.seen, TRUE);
    g_string_free (w.errors, TRUE);
  }
  {
    Walk w = { g_string_new (NULL), top, 0, 0, g_string_new (NULL), FALSE };

    cr_assert_not (rr_maildir_walk (top, TRUE, record, record_error, NULL, &w, &error));
    cr_assert (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY), "%s",
               error ? error->message : "no error");
    cr_assert_str_eq (w.seen->str, "./new/n", "the walk stopped");
    g_clear_error (&error);
    g_string_free (w.seen, TRUE);
    g_string_free (w.errors, TRUE);
  }
}

/* Replacement */

typedef struct {
  char *folder;
  char *sub;
  char *name;
  char *path;
  struct stat st;
} Msg;

static void
msg_free (Msg *m)
{
  g_free (m->folder);
  g_free (m->sub);
  g_free (m->name);
  g_free (m->path);
  g_free (m);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Msg, msg_free)

/* A message FOLDER/SUB/NAME holding @text, with mode 0640 and an old mtime. */
static Msg *
make_msg (const char *folder, const char *sub, const char *name, const char *text)
{
  Msg *m = g_new0 (Msg, 1);
  struct timespec times[2] = { { 1000000000, 250 }, { 1100000000, 123456789 } };
  GError *error = NULL;

  m->folder = g_strdup (folder);
  m->sub = g_strdup (sub);
  m->name = g_strdup (name);
  m->path = g_build_filename (folder, sub, name, NULL);
  cr_assert (g_file_set_contents (m->path, text, -1, &error), "%s", error ? error->message : "");
  cr_assert_eq (chmod (m->path, 0640), 0);
  cr_assert_eq (utimensat (AT_FDCWD, m->path, times, 0), 0);
  cr_assert_eq (stat (m->path, &m->st), 0);
  return m;
}

static RrMaildirEntry
entry_of (const Msg *m)
{
  RrMaildirEntry e = { m->folder, m->sub, m->name, m->path, NULL };
  return e;
}

static gboolean
replace (const Msg *m, const char *const *parts, GError **error)
{
  struct iovec iov[8];
  RrMaildirEntry e = entry_of (m);
  int n = 0;

  for (; parts[n]; n++)
    iov[n] = (struct iovec) { (void *) parts[n], strlen (parts[n]) };
  return rr_maildir_replace (&e, &m->st, iov, n, error);
}

static void
assert_attributes (const char *path, const struct stat *want)
{
  struct stat st;

  cr_assert_eq (stat (path, &st), 0, "%s: %s", path, g_strerror (errno));
  cr_assert_eq (st.st_mode & 07777, want->st_mode & 07777, "mode %o", st.st_mode & 07777);
  cr_assert_eq (st.st_mtim.tv_sec, want->st_mtim.tv_sec);
  cr_assert_eq (st.st_mtim.tv_nsec, want->st_mtim.tv_nsec);
  cr_assert_eq (st.st_uid, want->st_uid, "owner %ld", (long) st.st_uid);
  cr_assert_eq (st.st_gid, want->st_gid, "group %ld", (long) st.st_gid);
}

Test (maildir, replace_updates_size_fields_and_keeps_flags)
{
  g_autofree char *md = make_maildir ("md", TRUE);
  g_autofree char *cur = g_build_filename (md, "cur", NULL);
  g_autofree char *tmp = g_build_filename (md, "tmp", NULL);
  g_autoptr (Msg) m = make_msg (md, "cur", "1.M2P3.host,S=10,W=11:2,RS", "old text\n\n");
  g_autoptr (Msg) other = make_msg (md, "cur", "0.other:2,", "other\n");
  /* 24 bytes, 3 of them bare LFs (after "hi", the blank line, after "line"):
   * the "\n" that follows "\r" across two parts is not bare */
  const char *parts[] = { "Subject: hi\n", "\nbody\r", "", "\nline\n", NULL };
  const char *want = "Subject: hi\n\nbody\r\nline\n";
  g_autofree char *new_path = g_build_filename (cur, "1.M2P3.host,S=24,W=27:2,RS", NULL);
  GError *error = NULL;
  struct stat given = m->st;

  /* the attributes come from the struct stat given, not from the old file */
  given.st_mode = (given.st_mode & ~07777) | 0604;
  given.st_mtim = (struct timespec) { 1200000000, 500000000 };
  if (geteuid () == 0)  /* only root gives files away */
    given.st_uid = 12345, given.st_gid = 23456;
  m->st = given;
  cr_assert (replace (m, parts, &error), "%s", error ? error->message : "");
  g_autofree char *names = rr_test_listing (cur);
  cr_assert_str_eq (names, "0.other:2, 1.M2P3.host,S=24,W=27:2,RS");
  rr_test_assert_file (new_path, want, strlen (want));
  rr_test_assert_file (other->path, "other\n", 6);
  assert_attributes (new_path, &given);
  g_autofree char *left = rr_test_listing (tmp);
  cr_assert_str_eq (left, "", "tmp/ holds: %s", left);
}

Test (maildir, replace_in_new_keeps_the_name_without_size_fields)
{
  g_autofree char *md = make_maildir ("md", TRUE);
  g_autofree char *dir = g_build_filename (md, "new", NULL);
  g_autofree char *cur = g_build_filename (md, "cur", NULL);
  g_autoptr (Msg) m = make_msg (md, "new", "1.M2P3.host", "old\n");
  const char *parts[] = { "new bytes, longer than before\n", NULL };
  GError *error = NULL;
  struct stat before;

  cr_assert_eq (stat (m->path, &before), 0);
  cr_assert (replace (m, parts, &error), "%s", error ? error->message : "");
  g_autofree char *names = rr_test_listing (dir);
  g_autofree char *in_cur = rr_test_listing (cur);
  cr_assert_str_eq (names, "1.M2P3.host");
  cr_assert_str_eq (in_cur, "", "it stays in new/");
  rr_test_assert_file (m->path, parts[0], strlen (parts[0]));
  assert_attributes (m->path, &m->st);
  {
    struct stat after;
    cr_assert_eq (stat (m->path, &after), 0);
    cr_assert_neq (after.st_ino, before.st_ino, "a new file, not rewritten in place");
  }
}

Test (maildir, replace_creates_a_missing_tmp)
{
  g_autofree char *md = make_maildir ("md", FALSE);
  g_autofree char *tmp = g_build_filename (md, "tmp", NULL);
  g_autoptr (Msg) m = make_msg (md, "cur", "1.M2P3.host,S=4:2,S", "old\n");
  g_autofree char *new_path = g_build_filename (md, "cur", "1.M2P3.host,S=3:2,S", NULL);
  const char *parts[] = { "ab\n", NULL };
  GError *error = NULL;
  struct stat st;

  cr_assert (replace (m, parts, &error), "%s", error ? error->message : "");
  cr_assert_eq (lstat (tmp, &st), 0, "tmp/ was not created");
  cr_assert (S_ISDIR (st.st_mode));
  cr_assert_eq (st.st_mode & 0777, 0700, "tmp/ mode %o", st.st_mode & 0777);
  g_autofree char *left = rr_test_listing (tmp);
  cr_assert_str_eq (left, "");
  rr_test_assert_file (new_path, "ab\n", 3);
  cr_assert_neq (access (m->path, F_OK), 0, "the old name is gone");
}

/* A failure at @fault (REROUTE_FAULT) leaves the message as it was, byte for
 * byte and under its name, and nothing in tmp/. */
static void
assert_replace_fails_cleanly (const char *fault, gboolean with_tmp, int code)
{
  g_autofree char *md = make_maildir ("md", with_tmp);
  g_autofree char *cur = g_build_filename (md, "cur", NULL);
  g_autofree char *tmp = g_build_filename (md, "tmp", NULL);
  const char *old = "Subject: old\n\nold body\n";
  g_autoptr (Msg) m = make_msg (md, "cur", "1.M2P3.host,S=23,W=26:2,S", old);
  const char *parts[] = { "Subject: new\n\n", "a new body\n", NULL };
  GError *error = NULL;

  cr_assert (g_setenv ("REROUTE_FAULT", fault, TRUE));
  cr_assert_not (replace (m, parts, &error), "%s: replace succeeded", fault);
  cr_assert (g_error_matches (error, G_IO_ERROR, code), "%s: %s", fault,
             error ? error->message : "no error");
  g_unsetenv ("REROUTE_FAULT");
  rr_test_assert_file (m->path, old, strlen (old));
  assert_attributes (m->path, &m->st);
  g_autofree char *names = rr_test_listing (cur);
  cr_assert_str_eq (names, "1.M2P3.host,S=23,W=26:2,S", "%s", fault);
  if (with_tmp || access (tmp, F_OK) == 0)
    {
      g_autofree char *left = rr_test_listing (tmp);
      cr_assert_str_eq (left, "", "%s: tmp/ holds %s", fault, left);
    }
  g_error_free (error);
}

Test (maildir, replace_rename_failure_leaves_the_message)
{
  assert_replace_fails_cleanly ("rename:1:EIO", TRUE, G_IO_ERROR_FAILED);
}

Test (maildir, replace_full_disk_leaves_the_message)
{
  assert_replace_fails_cleanly ("write:1:ENOSPC", TRUE, G_IO_ERROR_NO_SPACE);
}

Test (maildir, replace_fsync_failure_leaves_the_message)
{
  assert_replace_fails_cleanly ("fsync:1:EIO", TRUE, G_IO_ERROR_FAILED);
}

/* The new name is published but its directory cannot be synced: it is
 * taken back, not left beside the old one. */
Test (maildir, replace_directory_fsync_failure_leaves_the_message_once)
{
  assert_replace_fails_cleanly ("fsync:2:EIO", TRUE, G_IO_ERROR_FAILED);
}

Test (maildir, replace_create_failure_leaves_the_message)
{
  assert_replace_fails_cleanly ("open:1:EACCES", TRUE, G_IO_ERROR_PERMISSION_DENIED);
}

Test (maildir, replace_mkdir_tmp_failure_leaves_the_message)
{
  assert_replace_fails_cleanly ("mkdir:1:EROFS", FALSE, G_IO_ERROR_READ_ONLY);
}

/* The old name cannot be removed after the new one is published: the new
 * one is taken back. A crash at that instant leaves both, and a rerun on the
 * old entry ends with one copy under the new name. */
Test (maildir, replace_interrupted_before_unlink_is_finished_by_a_rerun)
{
  g_autofree char *md = make_maildir ("md", TRUE);
  g_autofree char *cur = g_build_filename (md, "cur", NULL);
  g_autofree char *tmp = g_build_filename (md, "tmp", NULL);
  g_autoptr (Msg) m = make_msg (md, "cur", "1.M2P3.host,S=4:2,S", "old\n");
  g_autofree char *new_path = g_build_filename (cur, "1.M2P3.host,S=6:2,S", NULL);
  const char *parts[] = { "fresh\n", NULL };
  GError *error = NULL;

  /* The old name cannot be removed: the new one is taken back, so that the
   * message is not there twice. */
  cr_assert (g_setenv ("REROUTE_FAULT", "unlink:1:EIO", TRUE));
  cr_assert_not (replace (m, parts, &error));
  cr_assert_not_null (error);
  g_clear_error (&error);
  g_autofree char *once = rr_test_listing (cur);
  cr_assert_str_eq (once, "1.M2P3.host,S=4:2,S");
  rr_test_assert_file (m->path, "old\n", 4);
  g_unsetenv ("REROUTE_FAULT");

  /* A kill between the rename and the unlink leaves both names: a rerun
   * ends with the new one only. */
  cr_assert (g_file_set_contents (new_path, "fresh\n", 6, NULL));
  g_autofree char *both = rr_test_listing (cur);
  cr_assert_str_eq (both, "1.M2P3.host,S=4:2,S 1.M2P3.host,S=6:2,S");
  cr_assert (replace (m, parts, &error), "%s", error ? error->message : "");
  g_autofree char *one = rr_test_listing (cur);
  cr_assert_str_eq (one, "1.M2P3.host,S=6:2,S");
  rr_test_assert_file (new_path, "fresh\n", 6);
  g_autofree char *left = rr_test_listing (tmp);
  cr_assert_str_eq (left, "");
}
