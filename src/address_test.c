/* Unit tests for address.c: folding and the addr-spec span scanner. */
#include <criterion/criterion.h>
#include <string.h>

#include "address.h"

static GArray *
parse (const char *value)
{
  return rr_address_list_parse (value, strlen (value), NULL);
}

/* The text of span i, as it stands in @value. */
static char *
span_text (const char *value, GArray *spans, guint i)
{
  RrAddressSpan *s = &g_array_index (spans, RrAddressSpan, i);
  return g_strndup (value + s->start, s->end - s->start);
}

Test (address, fold_domain_idna_and_case)
{
  g_autofree char *a = rr_address_fold_domain ("B\xC3\xBC" "cher.Example", -1, NULL);
  g_autofree char *b = rr_address_fold_domain ("XN--BCHER-KVA.example", -1, NULL);
  cr_assert_str_eq (a, "xn--bcher-kva.example");
  cr_assert_str_eq (b, "xn--bcher-kva.example");
}

Test (address, fold_domain_rejects_bad)
{
  const char *bad[] = { "", ".a.com", "a..com", "a.com.", "a b.com", "[1.2.3.4]", "a/b.com" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      GError *error = NULL;
      cr_assert_null (rr_address_fold_domain (bad[i], -1, &error), "%s", bad[i]);
      cr_assert (g_error_matches (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_DOMAIN));
      g_error_free (error);
    }
}

/* The plain-name shortcut in rr_address_fold_domain() must give what
 * g_hostname_to_ascii() gives, including "xn--" labels and odd hyphens. */
Test (address, fold_domain_plain_names_match_glib)
{
  static const char *parts[] = { "a", "Z", "0", "-", ".", "_", "xn--", "XN--", "kva", "bcher" };
  GRand *r = g_rand_new_with_seed (42);

  for (int i = 0; i < 20000; i++)
    {
      g_autoptr (GString) name = g_string_new (NULL);
      int n = g_rand_int_range (r, 1, 8);
      for (int k = 0; k < n; k++)
        g_string_append (name, parts[g_rand_int_range (r, 0, G_N_ELEMENTS (parts))]);
      g_autofree char *glib = g_hostname_to_ascii (name->str);
      g_autofree char *want = glib ? g_ascii_strdown (glib, -1) : NULL;
      g_autofree char *got = rr_address_fold_domain (name->str, -1, NULL);
      if (got)
        cr_assert_str_eq (got, want, "%s", name->str);
    }
  g_rand_free (r);
}

Test (address, fold_keeps_extension_lowercases_local)
{
  g_autofree char *f = rr_address_fold ("Admin+Lists@CPANDL.net", NULL);
  cr_assert_str_eq (f, "admin+lists@cpandl.net");
  cr_assert_null (rr_address_fold ("nodomain", NULL));
}

Test (address, delimiter)
{
  cr_assert_eq (rr_address_find_delimiter ("a+b-c", "+"), 1);
  cr_assert_eq (rr_address_find_delimiter ("a+b-c", "-+"), 1);
  cr_assert_eq (rr_address_find_delimiter ("a-b+c", "+-"), 1);
  cr_assert_eq (rr_address_find_delimiter ("abc", "+"), -1);
  cr_assert_eq (rr_address_find_delimiter ("a+b", ""), -1);
}

Test (address, spans_cover_only_addr_spec)
{
  const char *v = " \"admin@cpandl.net\" <admin@cpandl.net> (Admin),\r\n\tbob@cpandl.org (Bob)\r\n";
  g_autoptr (GArray) spans = parse (v);
  cr_assert_not_null (spans);
  cr_assert_eq (spans->len, 2);
  g_autofree char *a = span_text (v, spans, 0);
  g_autofree char *b = span_text (v, spans, 1);
  cr_assert_str_eq (a, "admin@cpandl.net");
  /* the quoted display name comes first: the span must be the one inside <> */
  cr_assert_eq (g_array_index (spans, RrAddressSpan, 0).start, strchr (v, '<') - v + 1);
  cr_assert_str_eq (b, "bob@cpandl.org");
  cr_assert_str_eq (g_array_index (spans, RrAddressSpan, 1).addr, "bob@cpandl.org");
}

Test (address, groups_and_routes)
{
  const char *v = " Team: a@cpandl.net, B <b@cpandl.org>;, <@r1,@r2:c@x.com>, Undisclosed:;";
  g_autoptr (GArray) spans = parse (v);
  cr_assert_not_null (spans);
  cr_assert_eq (spans->len, 3);
  cr_assert_str_eq (g_array_index (spans, RrAddressSpan, 0).addr, "a@cpandl.net");
  cr_assert_str_eq (g_array_index (spans, RrAddressSpan, 1).addr, "b@cpandl.org");
  g_autofree char *c = span_text (v, spans, 2);
  cr_assert_str_eq (c, "c@x.com");
}

Test (address, obsolete_spacing_is_one_span)
{
  const char *v = " a @ cpandl . net";
  g_autoptr (GArray) spans = parse (v);
  cr_assert_not_null (spans);
  cr_assert_eq (spans->len, 1);
  cr_assert_str_eq (g_array_index (spans, RrAddressSpan, 0).addr, "a@cpandl.net");
  g_autofree char *t = span_text (v, spans, 0);
  cr_assert_str_eq (t, "a @ cpandl . net");
}

Test (address, empty_and_null_address)
{
  g_autoptr (GArray) a = parse ("  \r\n");
  g_autoptr (GArray) b = parse (" <>");
  cr_assert_not_null (a);
  cr_assert_eq (a->len, 0);
  cr_assert_not_null (b);
  cr_assert_eq (b->len, 0);
}

/* Inputs GMime reads differently from what is written: never guessed at. */
Test (address, disagreement_is_an_error)
{
  const char *bad[] = { " a@b.com;c@d.com", " foo@bar@baz", " \"unterminated <a@b.com>",
                        " <a@b.com", " a@b.com (open comment", " John Doe john@x.com",
                        " x@y.com\0z" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      GError *error = NULL;
      gsize len = i == 6 ? 10 : strlen (bad[i]);
      cr_assert_null (rr_address_list_parse (bad[i], len, &error), "%s", bad[i]);
      cr_assert (g_error_matches (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX), "%s", bad[i]);
      g_error_free (error);
    }
}

/* Found by src/message_fuzz (testdata/fuzz/message/crash-control-in-atom):
 * GMime ends an address at a control character and drops the rest; we read
 * "example\x1aTo:" as a group's name and took the address after it, which
 * folds like GMime's first one, so the two seemed to agree and the wrong
 * bytes were rewritten. Outside quotes a control character does not parse;
 * inside them it is a display name's business. */
Test (address, control_character_outside_quotes)
{
  const char *bad[] = { " j@b\xC3\xBC" "cher.example\x1aTo: J <j@xn--bcher-kva.example>",
                        " a@b.example\x01", " Bob\x7f <a@b.example>", " \x1b[31m <a@b.example>" };
  g_autoptr (GArray) quoted = parse (" \"Bob\x01\x7f\x1b[31m\" <a@b.example>");

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      GError *error = NULL;
      cr_assert_null (rr_address_list_parse (bad[i], strlen (bad[i]), &error), "%s", bad[i]);
      cr_assert (g_error_matches (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX), "%s", bad[i]);
      cr_assert (strstr (error->message, "control character") != NULL, "%s", error->message);
      g_error_free (error);
    }
  cr_assert_not_null (quoted);
  cr_assert_eq (quoted->len, 1);
  cr_assert_str_eq (g_array_index (quoted, RrAddressSpan, 0).addr, "a@b.example");
}

Test (address, utf8_domain_matches_gmime)
{
  const char *v = " J\xC3\xB6rg <j@b\xC3\xBC" "cher.example>";
  g_autoptr (GArray) spans = parse (v);
  cr_assert_not_null (spans);
  cr_assert_eq (spans->len, 1);
  cr_assert_str_eq (g_array_index (spans, RrAddressSpan, 0).addr, "j@b\xC3\xBC" "cher.example");
}
