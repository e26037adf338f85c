/* Unit tests for rewrite.c: which bytes change, and which do not. */
#include <criterion/criterion.h>
#include <string.h>

#include "rewrite.h"

static const char spec_table[] =
  "adatum.com inbound\n"
  "cpandl.net adatum.com\n"
  "cpandl.org adatum.com\n"
  "internal.adatum.com adatum.com\n"
  ".adatum.com adatum.com\n"
  "sales@cpandl.net team@adatum.com\n";

static RrRouteTable *
table_new (void)
{
  GError *error = NULL;
  RrRouteTable *t = rr_route_table_new ();
  cr_assert (rr_route_table_load_data (t, "spec", spec_table, strlen (spec_table), &error)
             && rr_route_table_finish (t, &error), "%s", error ? error->message : "");
  return t;
}

/* Rewrites @in and returns the output; *changes and *status report how. */
static char *
rewrite (const char *in, gboolean visible, const char *const *given, gboolean *changes)
{
  g_autoptr (RrRouteTable) t = table_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (RrMessage) m = rr_message_new (in, strlen (in), &error);
  RrRewriteOptions o = { visible, given };
  g_autoptr (RrRewrite) rw = NULL;
  GString *out = g_string_new (NULL);

  cr_assert_not_null (m);
  rw = rr_rewrite_new (m, t, &o, &error);
  cr_assert_not_null (rw, "%s", error ? error->message : "");
  rr_rewrite_append (rw, out);
  cr_assert_eq (rr_rewrite_get_size (rw), out->len);
  if (changes)
    *changes = rr_rewrite_changes (rw);
  return g_string_free (out, FALSE);
}

Test (rewrite, envelope_addr_spec_only)
{
  const char *in = "Delivered-To: \"Admin\" <Administrator@CPANDL.net> (boss)\r\n"
                   "To: administrator@cpandl.net\r\n\r\nbody\r\n";
  const char *want = "X-Rerouted-From: Administrator@CPANDL.net\r\n"
                     "Delivered-To: \"Admin\" <Administrator@adatum.com> (boss)\r\n"
                     "To: administrator@cpandl.net\r\n\r\nbody\r\n";
  gboolean changes = FALSE;
  g_autofree char *out = rewrite (in, FALSE, NULL, &changes);
  cr_assert_str_eq (out, want);
  cr_assert (changes);
}

Test (rewrite, second_run_changes_nothing)
{
  const char *in = "From x@y Thu Jan  1 00:00:00 1970\nDelivered-To: a+b@cpandl.org\n\nbody";
  g_autofree char *once = rewrite (in, FALSE, NULL, NULL);
  gboolean changes = TRUE;
  g_autofree char *twice = rewrite (once, FALSE, NULL, &changes);
  cr_assert_str_eq (once, "From x@y Thu Jan  1 00:00:00 1970\nX-Rerouted-From: a+b@cpandl.org\n"
                          "Delivered-To: a+b@adatum.com\n\nbody");
  cr_assert_str_eq (twice, once);
  cr_assert_not (changes);
}

Test (rewrite, to_cc_gain_delivered_to)
{
  const char *in = "To: a@cpandl.net, c@example.org\nCc: sales@cpandl.net\n\n";
  g_autofree char *out = rewrite (in, FALSE, NULL, NULL);
  cr_assert_str_eq (out, "Delivered-To: a@adatum.com, team@adatum.com\n"
                         "X-Rerouted-From: a@cpandl.net\nX-Rerouted-From: sales@cpandl.net\n"
                         "To: a@cpandl.net, c@example.org\nCc: sales@cpandl.net\n\n");
}

Test (rewrite, visible_rewrites_to_and_cc)
{
  const char *in = "Delivered-To: a@cpandl.net\nTo: A <a@cpandl.net>,\n  b@x.internal.adatum.com\n\n";
  g_autofree char *out = rewrite (in, TRUE, NULL, NULL);
  cr_assert_str_eq (out, "X-Rerouted-From: a@cpandl.net\nX-Rerouted-From: b@x.internal.adatum.com\n"
                         "Delivered-To: a@adatum.com\nTo: A <a@adatum.com>,\n  b@adatum.com\n\n");
}

Test (rewrite, given_recipient)
{
  const char *given[] = { "sales+q@cpandl.net", NULL };
  const char *in = "To: someone@else.example\n\nhi\n";
  g_autofree char *out = rewrite (in, FALSE, given, NULL);
  cr_assert_str_eq (out, "Delivered-To: team+q@adatum.com\nX-Rerouted-From: sales+q@cpandl.net\n"
                         "To: someone@else.example\n\nhi\n");
}

Test (rewrite, traced_recipient_is_not_rerouted_again)
{
  const char *given[] = { "a@cpandl.net", NULL };
  const char *in = "X-Rerouted-From: a@cpandl.net\nTo: x@y.example\n\n";
  gboolean changes = TRUE;
  g_autofree char *out = rewrite (in, FALSE, given, &changes);
  cr_assert_str_eq (out, in);
  cr_assert_not (changes);
}

Test (rewrite, unrouted_and_canonical)
{
  g_autoptr (RrRouteTable) t = table_new ();
  const char *in = "Delivered-To: a@cpandl.net, b@adatum.com, c@example.org, A@cpandl.org\n\n";
  g_autoptr (RrMessage) m = rr_message_new (in, strlen (in), NULL);
  g_autoptr (RrRewrite) rw = rr_rewrite_new (m, t, NULL, NULL);
  const GPtrArray *canon = rr_rewrite_get_canonical (rw);
  const GArray *recips = rr_rewrite_get_recipients (rw);
  cr_assert_eq (canon->len, 2, "a@adatum.com, b@adatum.com; A@adatum.com is the same");
  cr_assert_str_eq (canon->pdata[0], "a@adatum.com");
  cr_assert_str_eq (canon->pdata[1], "b@adatum.com");
  cr_assert (rr_rewrite_has_unrouted (rw));
  cr_assert_eq (recips->len, 4);
  cr_assert_null (g_array_index (recips, RrReroute, 2).canonical);
  cr_assert_eq (g_array_index (recips, RrReroute, 0).chain->len, 2);
}

Test (rewrite, unparsable_routed_field_is_an_error)
{
  g_autoptr (RrRouteTable) t = table_new ();
  GError *error = NULL;
  const char *in = "Subject: x\nDelivered-To: a@cpandl.net;c@d.example\n\n";
  const char *other = "Delivered-To: a@example.net;c@d.example\n\n";
  g_autoptr (RrMessage) m = rr_message_new (in, strlen (in), NULL);
  g_autoptr (RrMessage) m2 = rr_message_new (other, strlen (other), NULL);
  g_autoptr (RrRewrite) rw2 = rr_rewrite_new (m2, t, NULL, NULL);
  cr_assert_null (rr_rewrite_new (m, t, NULL, &error));
  cr_assert (g_error_matches (error, RR_REWRITE_ERROR, RR_REWRITE_ERROR_BAD_HEADER));
  cr_assert (strstr (error->message, "Delivered-To field at byte 11"), "%s", error->message);
  g_error_free (error);
  cr_assert_not_null (rw2, "a field that cannot hold a routed address is not routed");
  cr_assert_not (rr_rewrite_changes (rw2));
  cr_assert (rr_rewrite_has_unrouted (rw2));
}
