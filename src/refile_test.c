/* Unit tests for refile.c: which canonical mailboxes a message already sits
 * in, by identity, however the paths are spelt; deliveries written ahead. */
#include "config.h"

#include <criterion/criterion.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "refile.h"
#include "testutil.h"

static char *tmpdir;

static void
setup (void)
{
  tmpdir = rr_test_tmpdir_new ("refile");
}

static void
teardown (void)
{
  rr_test_tmpdir_free (g_steal_pointer (&tmpdir));
}

TestSuite (refile, .init = setup, .fini = teardown);

static void
make_dir (const char *rel)
{
  g_autofree char *p = g_build_filename (tmpdir, rel, NULL);

  cr_assert_eq (g_mkdir_with_parents (p, 0700), 0, "%s", p);
}

static void
make_file (const char *rel)
{
  g_autofree char *p = g_build_filename (tmpdir, rel, NULL);

  cr_assert (g_file_set_contents (p, "", 0, NULL), "%s", p);
}

/* The addresses of "ann@adatum.com bob@adatum.com" that @template (below
 * tmpdir) sends elsewhere than the mailbox @h, joined by spaces; "ERROR"
 * when the call fails. (transfer full) */
static char *
elsewhere_from (const char *template, const RrRefileHome *h)
{
  g_autofree char *tpl = g_build_filename (tmpdir, template, NULL);
  g_autoptr (GPtrArray) canonical = g_ptr_array_new ();
  g_autoptr (GPtrArray) to = NULL;
  RrRefileOptions opt = { tpl, NULL, { 0 } };
  RrRefileSource src = { "key", 0, NULL, NULL, 0, FALSE, h, NULL };

  g_ptr_array_add (canonical, "ann@adatum.com");
  g_ptr_array_add (canonical, "bob@adatum.com");
  if ((to = rr_refile_elsewhere (&opt, &src, canonical, NULL)) == NULL)
    return g_strdup ("ERROR");
  g_ptr_array_add (to, NULL);
  return g_strjoinv (" ", (char **) to->pdata);
}

/* elsewhere_from() the mailbox at @home, below tmpdir. (transfer full) */
static char *
elsewhere (const char *template, const char *home)
{
  g_autofree char *at = g_build_filename (tmpdir, home, NULL);
  g_autoptr (RrRefileHome) h = rr_refile_home_new (at);

  return elsewhere_from (template, h);
}

#define assert_elsewhere(template, home, want)                                   \
  do                                                                             \
    {                                                                            \
      g_autofree char *got_ = elsewhere (template, home);                       \
      cr_assert_str_eq (got_, want, "%s from %s", template, home);               \
    }                                                                            \
  while (0)

Test (refile, maildir_is_its_own_destination)
{
  make_dir ("v/adatum.com/ann/cur");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann", "bob@adatum.com");
  assert_elsewhere ("v/%d/%u/", "v//adatum.com/./ann/", "bob@adatum.com");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/bob", "ann@adatum.com bob@adatum.com");
}

Test (refile, symlinked_parent_is_the_same_mailbox)
{
  g_autofree char *link = g_build_filename (tmpdir, "link", NULL);

  make_dir ("v/adatum.com/ann/cur");
  cr_assert_eq (symlink ("v", link), 0);
  assert_elsewhere ("link/%d/%u/", "v/adatum.com/ann", "bob@adatum.com");
  assert_elsewhere ("v/%d/%u/", "link/adatum.com/ann", "bob@adatum.com");
}

Test (refile, maildirpp_subfolder_belongs_to_its_maildir)
{
  make_dir ("v/adatum.com/ann/.Archive/cur");
  make_dir ("v/adatum.com/ann/.Lists.Work/new");
  make_dir ("v/adatum.com/ann/Archive/cur");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann/.Archive", "bob@adatum.com");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann/.Lists.Work/", "bob@adatum.com");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann/.Archive/.", "bob@adatum.com");
  /* a directory without the dot is no Maildir++ subfolder */
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann/Archive", "ann@adatum.com bob@adatum.com");
  /* only a direct child */
  make_dir ("v/adatum.com/ann/.Archive/.Deeper/cur");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann/.Archive/.Deeper",
                    "ann@adatum.com bob@adatum.com");
}

Test (refile, current_directory_as_the_spool)
{
  g_autofree char *sub = g_build_filename (tmpdir, "v/adatum.com/ann/.Archive", NULL);

  g_autoptr (RrRefileHome) h = NULL;
  g_autofree char *got = NULL;

  make_dir ("v/adatum.com/ann/.Archive/cur");
  cr_assert_eq (chdir (sub), 0);
  h = rr_refile_home_new (".");
  got = elsewhere_from ("v/%d/%u/", h);
  cr_assert_str_eq (got, "bob@adatum.com");
}

Test (refile, missing_mailbox_holds_nothing)
{
  make_dir ("v/adatum.com");
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann", "ann@adatum.com bob@adatum.com");
  assert_elsewhere ("v/%d/%u", "v/adatum.com/ann", "ann@adatum.com bob@adatum.com");
}

Test (refile, mbox_is_its_own_destination)
{
  make_dir ("m/adatum.com");
  make_file ("m/adatum.com/ann");
  make_file ("m/adatum.com/.bob");
  assert_elsewhere ("m/%d/%u", "m/adatum.com/ann", "bob@adatum.com");
  assert_elsewhere ("m//%d/./%u", "m/adatum.com/ann", "bob@adatum.com");
  /* a Maildir template never names an mbox file */
  assert_elsewhere ("m/%d/%u/", "m/adatum.com/ann", "ann@adatum.com bob@adatum.com");
}

Test (refile, kinds_do_not_mix)
{
  make_dir ("v/adatum.com/ann/.Archive/cur");
  make_file ("v/adatum.com/ann/.mbox");
  /* an mbox template naming a directory, a Maildir source */
  assert_elsewhere ("v/%d/%u", "v/adatum.com/ann", "ann@adatum.com bob@adatum.com");
  /* an mbox file named like a subfolder is no subfolder */
  assert_elsewhere ("v/%d/%u/", "v/adatum.com/ann/.mbox", "ann@adatum.com bob@adatum.com");
}

Test (refile, no_home_no_match)
{
  g_autofree char *tpl = g_build_filename (tmpdir, "v/%d/%u/", NULL);
  g_autoptr (GPtrArray) canonical = g_ptr_array_new ();
  g_autoptr (GPtrArray) to = NULL;
  RrRefileOptions opt = { tpl, NULL, { 0 } };
  RrRefileSource src = { "key", 0, NULL, NULL, 0, FALSE, NULL, NULL };

  make_dir ("v/adatum.com/ann/cur");
  g_ptr_array_add (canonical, "ann@adatum.com");
  to = rr_refile_elsewhere (&opt, &src, canonical, NULL);
  cr_assert_not_null (to);
  cr_assert_eq (to->len, 1);
  /* a home that cannot be stat'ed is nobody's mailbox */
  assert_elsewhere ("v/%d/%u/", "v/gone", "ann@adatum.com bob@adatum.com");
}

Test (refile, unsafe_address_fails)
{
  g_autofree char *tpl = g_build_filename (tmpdir, "v/%d/%u/", NULL);
  g_autoptr (GPtrArray) canonical = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  RrRefileOptions opt = { tpl, NULL, { 0 } };
  RrRefileSource src = { "key", 0, NULL, NULL, 0, FALSE, NULL, NULL };

  g_ptr_array_add (canonical, "../x@adatum.com");
  cr_assert_null (rr_refile_elsewhere (&opt, &src, canonical, &error));
  cr_assert (g_error_matches (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE));
}

/* Drafts: deliveries written ahead by a worker thread. */

typedef struct {
  char *tpl;
  RrRefileOptions opt;
  RrRefile *rf;
  GPtrArray *ann, *both;
} Drafting;

/* A refile into tmpdir/dest/%d/%u/ that has delivered "first\n" to ann,
 * so that ann's Maildir is prepared and bob's is not. */
static Drafting *
drafting_new (void)
{
  Drafting *d = g_new0 (Drafting, 1);
  RrRefileSource src = { "k1", 1000, NULL, NULL, 0, FALSE, NULL, NULL };
  GError *error = NULL;

  d->tpl = g_build_filename (tmpdir, "dest/%d/%u/", NULL);
  d->opt = (RrRefileOptions) { d->tpl, NULL, { 0 } };
  d->rf = rr_refile_new (&d->opt, NULL, NULL);
  d->ann = g_ptr_array_new ();
  g_ptr_array_add (d->ann, "ann@adatum.com");
  d->both = g_ptr_array_new ();
  g_ptr_array_add (d->both, "ann@adatum.com");
  g_ptr_array_add (d->both, "bob@adatum.com");
  cr_assert_null (rr_refile_write_drafts (d->rf, &src, d->both, "early\n", 6),
                  "a draft before any Maildir was prepared");
  cr_assert (rr_refile_deliver (d->rf, &src, d->ann, "first\n", 6, &error), "%s",
             error ? error->message : "");
  cr_assert (rr_refile_flush (d->rf, &error), "%s", error ? error->message : "");
  return d;
}

static void
drafting_free (Drafting *d)
{
  rr_refile_free (d->rf);
  g_ptr_array_unref (d->ann);
  g_ptr_array_unref (d->both);
  g_free (d->tpl);
  g_free (d);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Drafting, drafting_free)

static int
compare_texts (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The contents of the files in tmpdir/REL, sorted, joined by '|'. */
static char *
contents_of (const char *rel)
{
  g_autofree char *dir = g_build_filename (tmpdir, rel, NULL);
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      char *text = NULL;
      cr_assert (g_file_get_contents (p, &text, NULL, NULL), "%s", p);
      g_ptr_array_add (texts, text);
    }
  g_ptr_array_sort (texts, compare_texts);
  g_ptr_array_add (texts, NULL);
  return g_strjoinv ("|", (char **) texts->pdata);
}

Test (refile, drafts_go_only_into_prepared_maildirs_and_are_published)
{
  g_autoptr (Drafting) d = drafting_new ();
  RrRefileSource src = { "k2", 1000, NULL, NULL, 0, FALSE, NULL, NULL };
  g_autofree char *bob = g_build_filename (tmpdir, "dest/adatum.com/bob", NULL);
  GError *error = NULL;

  src.drafts = rr_refile_write_drafts (d->rf, &src, d->both, "drafted\n", 8);
  cr_assert_not_null (src.drafts);
  g_autofree char *tmp = contents_of ("dest/adatum.com/ann/tmp");
  cr_assert_str_eq (tmp, "drafted\n", "ann's tmp/ holds the draft");
  cr_assert_neq (access (bob, F_OK), 0, "nothing was made for bob, whose Maildir is new");
  /* Delivery publishes the draft: its bytes, not the ones passed again. */
  cr_assert (rr_refile_deliver (d->rf, &src, d->ann, "passed\n", 7, &error), "%s",
             error ? error->message : "");
  cr_assert (rr_refile_flush (d->rf, &error), "%s", error ? error->message : "");
  rr_refile_drafts_free (src.drafts);
  g_autofree char *delivered = contents_of ("dest/adatum.com/ann/new");
  cr_assert_str_eq (delivered, "drafted\n|first\n");
  g_autofree char *left = contents_of ("dest/adatum.com/ann/tmp");
  cr_assert_str_eq (left, "", "tmp/ is empty");
}

Test (refile, unused_drafts_are_removed)
{
  g_autoptr (Drafting) d = drafting_new ();
  RrRefileSource src = { "k2", 1000, NULL, NULL, 0, FALSE, NULL, NULL };
  RrRefileDrafts *drafts = rr_refile_write_drafts (d->rf, &src, d->ann, "drafted\n", 8);

  cr_assert_not_null (drafts);
  rr_refile_drafts_free (drafts);
  g_autofree char *left = contents_of ("dest/adatum.com/ann/tmp");
  cr_assert_str_eq (left, "", "tmp/ holds %s", left);
  g_autofree char *delivered = contents_of ("dest/adatum.com/ann/new");
  cr_assert_str_eq (delivered, "first\n");
}

/* A draft that could not be written (tmp/ replaced by a file) fails the
 * delivery it was for, with its own error, even when a new write would
 * work, and nothing is published. */
Test (refile, a_failed_draft_fails_its_delivery)
{
  g_autoptr (Drafting) d = drafting_new ();
  g_autofree char *tmp = g_build_filename (tmpdir, "dest/adatum.com/ann/tmp", NULL);
  RrRefileSource src = { "k2", 1000, NULL, NULL, 0, FALSE, NULL, NULL };
  GError *error = NULL;

  cr_assert_eq (g_rmdir (tmp), 0);
  cr_assert (g_file_set_contents (tmp, "", 0, NULL));
  src.drafts = rr_refile_write_drafts (d->rf, &src, d->ann, "drafted\n", 8);
  cr_assert_not_null (src.drafts, "the failure is kept for the delivery");
  /* tmp/ is back, but the write did fail: that is what is reported */
  cr_assert_eq (g_unlink (tmp), 0);
  cr_assert_eq (g_mkdir (tmp, 0700), 0);
  cr_assert_not (rr_refile_deliver (d->rf, &src, d->ann, "drafted\n", 8, &error));
  cr_assert_not_null (error);
  cr_assert (strstr (error->message, "tmp") != NULL, "%s", error->message);
  g_clear_error (&error);
  cr_assert (rr_refile_flush (d->rf, &error));
  rr_refile_drafts_free (src.drafts);
  g_autofree char *delivered = contents_of ("dest/adatum.com/ann/new");
  cr_assert_str_eq (delivered, "first\n");
}
