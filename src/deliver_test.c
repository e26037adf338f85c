/* Unit tests for deliver.c: template expansion, path safety, mbox framing,
 * and mailbox creation that never follows a symlink. */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "testutil.h"

static char *tmpdir;

static void
setup (void)
{
  tmpdir = rr_test_tmpdir_new ("deliver");
}

static void
teardown (void)
{
  rr_test_tmpdir_free (g_steal_pointer (&tmpdir));
}

TestSuite (deliver, .init = setup, .fini = teardown);

Test (deliver, expand_every_escape)
{
  g_autofree char *p = rr_deliver_expand ("/m/%d/%u/%a/100%%", "Ann+x@adatum.com", NULL);
  cr_assert_str_eq (p, "/m/adatum.com/Ann+x/Ann+x@adatum.com/100%");
}

Test (deliver, expand_refuses_unsafe_parts)
{
  const char *bad[] = { "../../etc/x@adatum.com", "a/b@adatum.com", ".hidden@adatum.com",
                        "a\001b@adatum.com", "a@..", "a@.adatum.com", "a..b@adatum.com" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      GError *error = NULL;
      cr_assert_null (rr_deliver_expand ("/m/%d/%u/", bad[i], &error), "%s", bad[i]);
      cr_assert (g_error_matches (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE), "%s", bad[i]);
      g_error_free (error);
    }
  /* a part the template does not use cannot do harm */
  g_autofree char *p = rr_deliver_expand ("/m/%d/all", "../x@adatum.com", NULL);
  cr_assert_str_eq (p, "/m/adatum.com/all");
}

Test (deliver, template_root)
{
  const char *cases[][2] = {
    { "/var/mail/%u", "/var/mail" }, { "/srv/%d/%u/", "/srv" }, { "/srv/x%d/", "/srv" },
    { "/home/ann/Maildir/", "/home/ann/Maildir" }, { "mail/%u", "mail" }, { "%u", "." },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *root = rr_deliver_template_root (cases[i][0]);
      cr_assert_str_eq (root, cases[i][1], "%s", cases[i][0]);
    }
}

Test (deliver, frame_mboxrd_and_mboxo)
{
  const char *msg = "Subject: x\n\nFrom here\n>From there\nno newline";
  g_autoptr (GString) rd = g_string_new (NULL);
  g_autoptr (GString) o = g_string_new (NULL);
  g_autoptr (GString) cl2 = g_string_new (NULL);

  rr_deliver_mbox_frame (rd, "From a@b Mon Jan  1 00:00:00 2001", msg, strlen (msg), RR_MBOX_FORMAT_RD);
  rr_deliver_mbox_frame (o, "From a@b Mon Jan  1 00:00:00 2001\n", msg, strlen (msg), RR_MBOX_FORMAT_O);
  rr_deliver_mbox_frame (cl2, "From a@b Mon Jan  1 00:00:00 2001", msg, strlen (msg), RR_MBOX_FORMAT_CL2);
  cr_assert_str_eq (rd->str, "From a@b Mon Jan  1 00:00:00 2001\nSubject: x\n\n>From here\n"
                             ">>From there\nno newline\n\n");
  cr_assert_str_eq (o->str, "From a@b Mon Jan  1 00:00:00 2001\nSubject: x\n\n>From here\n"
                            ">From there\nno newline\n\n");
  /* body: "From here\n>From there\nno newline\n" = 10 + 12 + 11 bytes */
  cr_assert_str_eq (cl2->str, "From a@b Mon Jan  1 00:00:00 2001\nContent-Length: 33\nSubject: x\n\n"
                              "From here\n>From there\nno newline\n\n");
}

Test (deliver, prepare_makes_a_maildir_0700)
{
  g_autofree char *path = g_build_filename (tmpdir, "a", "b", NULL);
  g_autofree char *cur = g_build_filename (path, "cur", NULL);
  RrDeliverOptions o = { 0 };
  struct stat st;

  cr_assert (rr_deliver_prepare (tmpdir, path, TRUE, &o, NULL));
  cr_assert_eq (stat (cur, &st), 0);
  cr_assert_eq (st.st_mode & 07777, 0700);
  cr_assert (rr_deliver_prepare (tmpdir, path, TRUE, &o, NULL), "a second time is fine");
}

Test (deliver, prepare_refuses_a_planted_symlink)
{
  g_autofree char *outside = g_build_filename (tmpdir, "outside", NULL);
  g_autofree char *root = g_build_filename (tmpdir, "root", NULL);
  g_autofree char *link = g_build_filename (root, "adatum.com", NULL);
  g_autofree char *path = g_build_filename (link, "ann", NULL);
  g_autofree char *escaped = g_build_filename (outside, "ann", NULL);
  RrDeliverOptions o = { 0 };
  GError *error = NULL;

  cr_assert_eq (g_mkdir (outside, 0700), 0);
  cr_assert_eq (g_mkdir (root, 0700), 0);
  cr_assert_eq (symlink (outside, link), 0);
  cr_assert_not (rr_deliver_prepare (root, path, TRUE, &o, &error));
  cr_assert (g_error_matches (error, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE));
  cr_assert_neq (access (escaped, F_OK), 0, "nothing was made through the symlink");
  g_error_free (error);
}

Test (deliver, mbox_append_refuses_a_symlinked_mbox)
{
  g_autofree char *target = g_build_filename (tmpdir, "target", NULL);
  g_autofree char *mbox = g_build_filename (tmpdir, "mbox", NULL);
  RrDeliverOptions o = { 0 };
  GError *error = NULL;
  g_autofree char *text = NULL;

  cr_assert (g_file_set_contents (target, "keep", 4, NULL));
  cr_assert_eq (symlink (target, mbox), 0);
  cr_assert_not (rr_deliver_mbox_append (mbox, "From x\n\n", 8, &o, NULL, NULL, &error));
  cr_assert (g_file_get_contents (target, &text, NULL, NULL));
  cr_assert_str_eq (text, "keep");
  g_clear_error (&error);
}

/* Maildir flags become the Status and X-Status fields mbox readers use. */
Test (deliver, mbox_status_carries_maildir_flags)
{
  static const struct { const char *info, *msg, *want; } cases[] = {
    { ":2,S", "A: b\n\nx\n", "Status: RO\nA: b\n\nx\n" },
    { ":2,", "A: b\n\nx\n", "Status: O\nA: b\n\nx\n" },
    { ":2,DFPRST", "A: b\n", "Status: RO\nX-Status: AFTD\nA: b\n" },
    { "!2,FS", "A: b\r\n\r\nx\r\n", "Status: RO\r\nX-Status: F\r\nA: b\r\n\r\nx\r\n" },
    { ";2,T", "A: b", "Status: O\nX-Status: D\nA: b" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) got = rr_deliver_with_mbox_status (cases[i].info, cases[i].msg,
                                                              strlen (cases[i].msg));
      cr_assert_str_eq (got->str, cases[i].want, "info %s", cases[i].info);
    }
}
