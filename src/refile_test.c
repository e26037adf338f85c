/* Unit tests for refile.c: which canonical mailboxes a message already sits
 * in, by identity, however the paths are spelt. */
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
  RrRefileSource src = { "key", 0, NULL, NULL, 0, FALSE, h };

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
  RrRefileSource src = { "key", 0, NULL, NULL, 0, FALSE, NULL };

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
  RrRefileSource src = { "key", 0, NULL, NULL, 0, FALSE, NULL };

  g_ptr_array_add (canonical, "../x@adatum.com");
  cr_assert_null (rr_refile_elsewhere (&opt, &src, canonical, &error));
  cr_assert (g_error_matches (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE));
}
