/* route_test.c - the route table: keys, targets, precedence, chains, errors
 * with their places, lint and the may_match prefilter. */
#include "config.h"

#include "route.h"

#include <criterion/criterion.h>
#include <string.h>

/* (transfer full) $top_srcdir/testdata/tables/NAME */
static char *
fixture (const char *name)
{
  const char *top = g_getenv ("top_srcdir");

  return g_build_filename (top ? top : ".", "testdata", "tables", name, NULL);
}

static RrRouteTable *
load_text (const char *text)
{
  RrRouteTable *t = rr_route_table_new ();
  g_autoptr (GError) err = NULL;

  cr_assert (rr_route_table_load_data (t, "t.table", text, strlen (text), &err),
             "%s", err ? err->message : "");
  return t;
}

static RrRouteTable *
load_fixture (const char *name)
{
  RrRouteTable *t = rr_route_table_new ();
  g_autofree char *path = fixture (name);
  g_autoptr (GError) err = NULL;

  cr_assert (rr_route_table_load_file (t, path, &err), "%s",
             err ? err->message : "");
  return t;
}

/* The message of loading @text, which must fail with @code. */
static char *
load_error (const char *text, int code)
{
  g_autoptr (RrRouteTable) t = rr_route_table_new ();
  g_autoptr (GError) err = NULL;

  cr_assert_not (rr_route_table_load_data (t, "t.table", text, strlen (text),
                                           &err));
  cr_assert_eq (err->code, code);
  cr_assert_eq (rr_route_table_size (t), 0);
  return g_strdup (err->message);
}

/* The message of finishing @t, which must fail with @code. */
static char *
finish_error (RrRouteTable *t, int code)
{
  g_autoptr (GError) err = NULL;

  cr_assert_not (rr_route_table_finish (t, &err));
  cr_assert_eq (err->domain, RR_ROUTE_ERROR);
  cr_assert_eq (err->code, code);
  return g_strdup (err->message);
}

static void
finish_ok (RrRouteTable *t)
{
  g_autoptr (GError) err = NULL;

  cr_assert (rr_route_table_finish (t, &err), "%s", err ? err->message : "");
}

/* The canonical address, or "-" when not routed. */
static char *
resolve (const RrRouteTable *t, const char *address)
{
  g_autoptr (GError) err = NULL;
  char *canonical = NULL;
  int rc = rr_route_table_resolve (t, address, &canonical, NULL, &err);

  cr_assert_geq (rc, 0, "%s", err ? err->message : "");
  cr_assert_eq (rc == 1, canonical != NULL);
  return rc ? canonical : g_strdup ("-");
}

/* The one-step result: "(inbound)", "-" for no rule, else the address; the
 * rule's key goes to @key. */
static char *
step (const RrRouteTable *t, const char *address, const char **key)
{
  char *result = (char *) "untouched";
  const RrRoute *r = rr_route_table_lookup (t, address, &result);

  if (r == NULL)
    {
      cr_assert_str_eq (result, "untouched");
      return g_strdup ("-");
    }
  if (key != NULL)
    *key = r->key;
  return result ? result : g_strdup ("(inbound)");
}

static char *
joined_lint (const RrRouteTable *t)
{
  g_autoptr (GPtrArray) lines = rr_route_table_lint (t);

  g_ptr_array_add (lines, NULL);
  return g_strjoinv ("\n", (char **) lines->pdata);
}

#define assert_resolves(t, from, to)                                           \
  do {                                                                         \
    g_autofree char *got_ = resolve ((t), (from));                             \
    cr_assert_str_eq (got_, (to), "%s", (from));                               \
  } while (0)

#define assert_step(t, from, to, rule_key)                                     \
  do {                                                                         \
    const char *key_ = "";                                                     \
    g_autofree char *got_ = step ((t), (from), &key_);                         \
    cr_assert_str_eq (got_, (to), "%s", (from));                               \
    cr_assert_str_eq (key_, (rule_key), "%s", (from));                         \
  } while (0)

/* ---- keys and targets ----------------------------------------------- */

Test (route, spec_table_loads)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");

  finish_ok (t);
  cr_assert_eq (rr_route_table_size (t), 6);
}

Test (route, each_key_kind)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");

  assert_step (t, "bob@cpandl.net", "bob@adatum.com", "cpandl.net");
  assert_step (t, "sales@cpandl.net", "team@adatum.com", "sales@cpandl.net");
  assert_step (t, "bob@deep.sub.adatum.com", "bob@adatum.com", ".adatum.com");
  assert_step (t, "bob@adatum.com", "(inbound)", "adatum.com");
  assert_step (t, "bob@example.org", "-", "");
}

Test (route, at_domain_key_and_target)
{
  g_autoptr (RrRouteTable) t = load_text ("@old.example  @new.example\n"
                                          "new.example   inbound\n");

  assert_step (t, "bob@old.example", "bob@new.example", "@old.example");
  assert_resolves (t, "bob@old.example", "bob@new.example");
}

Test (route, each_target_kind)
{
  g_autoptr (RrRouteTable) t = load_text ("a.example   INBOUND\n"
                                          "b.example   c.example\n"
                                          "d.example   postmaster@a.example\n");

  assert_step (t, "x@a.example", "(inbound)", "a.example");
  assert_step (t, "x@b.example", "x@c.example", "b.example");
  assert_step (t, "x@d.example", "postmaster@a.example", "d.example");
}

Test (route, unroutable_addresses)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");

  assert_step (t, "cpandl.net", "-", "");
  assert_step (t, "bob@bad..cpandl.net", "-", "");
  assert_step (t, "@cpandl.net", "-", "");
  assert_resolves (t, "bob@example.org", "-");
  assert_resolves (t, "no-at-sign", "-");
}

/* ---- precedence --------------------------------------------------------- */

static const char precedence[] = "bob+tag@x.example  exact@t.example\n"
                                 "bob@x.example      base@t.example\n"
                                 "x.example          domain.example\n"
                                 ".example           short.example\n"
                                 ".b.x.example       long.example\n";

Test (route, address_beats_base_beats_domain)
{
  g_autoptr (RrRouteTable) t = load_text (precedence);

  assert_step (t, "bob+tag@x.example", "exact@t.example", "bob+tag@x.example");
  assert_step (t, "bob+other@x.example", "base+other@t.example",
               "bob@x.example");
  assert_step (t, "alice+tag@x.example", "alice+tag@domain.example",
               "x.example");
}

Test (route, domain_beats_wildcard_and_longer_wildcard_wins)
{
  g_autoptr (RrRouteTable) t = load_text (precedence);

  assert_step (t, "u@x.example", "u@domain.example", "x.example");
  assert_step (t, "u@a.b.x.example", "u@long.example", ".b.x.example");
  assert_step (t, "u@b.x.example", "u@short.example", ".example");
  assert_step (t, "u@y.example", "u@short.example", ".example");
}

Test (route, wildcard_does_not_match_its_parent)
{
  g_autoptr (RrRouteTable) t = load_text (".parent.example  t.example\n");

  assert_step (t, "u@parent.example", "-", "");
  assert_step (t, "u@child.parent.example", "u@t.example", ".parent.example");
  assert_step (t, "u@xparent.example", "-", "");
}

/* ---- extensions --------------------------------------------------------- */

Test (route, extension_with_default_delimiter)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");

  finish_ok (t);
  assert_step (t, "sales+urgent@cpandl.net", "team+urgent@adatum.com",
               "sales@cpandl.net");
  assert_resolves (t, "Sales+Urgent@cpandl.net", "team+Urgent@adatum.com");
  assert_resolves (t, "bob+x@cpandl.net", "bob+x@adatum.com");
  /* An empty base is no address. */
  assert_step (t, "+sales@cpandl.net", "+sales@adatum.com", "cpandl.net");
}

Test (route, extension_with_custom_delimiters)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");

  rr_route_table_set_delimiters (t, "-=");
  assert_step (t, "sales-urgent@cpandl.net", "team-urgent@adatum.com",
               "sales@cpandl.net");
  assert_step (t, "sales=a-b@cpandl.net", "team=a-b@adatum.com",
               "sales@cpandl.net");
  assert_step (t, "sales+urgent@cpandl.net", "sales+urgent@adatum.com",
               "cpandl.net");
}

Test (route, extensions_off)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");

  rr_route_table_set_delimiters (t, "");
  assert_step (t, "sales+urgent@cpandl.net", "sales+urgent@adatum.com",
               "cpandl.net");
  assert_step (t, "sales@cpandl.net", "team@adatum.com", "sales@cpandl.net");
}

Test (route, extension_kept_by_address_key_with_domain_target)
{
  g_autoptr (RrRouteTable) t = load_text ("bob@x.example  y.example\n");

  assert_step (t, "Bob+Tag@x.example", "Bob+Tag@y.example", "bob@x.example");
}

/* ---- folding ---------------------------------------------------------- */

Test (route, case_folding)
{
  g_autoptr (RrRouteTable) t = load_text ("Sales@CPANDL.net  team@adatum.com\n"
                                          "CPANDL.NET        Adatum.COM\n");

  assert_step (t, "SALES@cpandl.NET", "team@adatum.com", "Sales@CPANDL.net");
  /* The local part is kept as written, the target as in the table. */
  assert_step (t, "Admin@CpAndl.Net", "Admin@Adatum.COM", "CPANDL.NET");
}

Test (route, idna_utf8_key_matches_punycode_address)
{
  g_autoptr (RrRouteTable) t = load_text ("bücher.example  t.example\n");

  assert_step (t, "x@xn--bcher-kva.example", "x@t.example", "bücher.example");
  assert_step (t, "x@BÜCHER.Example", "x@t.example", "bücher.example");
}

Test (route, idna_punycode_key_matches_utf8_address)
{
  static const char text[] = "xn--caf-dma.example    t.example\n"
                             "a@XN--CAF-DMA.example  b@t.example\n";
  g_autoptr (RrRouteTable) t = load_text (text);

  assert_step (t, "x@café.example", "x@t.example", "xn--caf-dma.example");
  assert_step (t, "A@CAFÉ.example", "b@t.example", "a@XN--CAF-DMA.example");
}

Test (route, idna_forms_are_one_key)
{
  g_autofree char *msg = load_error ("bücher.example  inbound\n"
                                     "xn--bcher-kva.example  inbound\n",
                                     RR_ROUTE_ERROR_SYNTAX);

  cr_assert_str_eq (msg, "t.table:2: duplicate key 'xn--bcher-kva.example' "
                         "(first at line 1)");
}

/* ---- chains ------------------------------------------------------------- */

Test (route, chain_to_inbound)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");
  g_autofree char *path = fixture ("spec.table");
  g_autoptr (GPtrArray) chain = NULL;
  g_autofree char *canonical = NULL;
  g_autoptr (GError) err = NULL;
  const RrRoute *r0, *r1;

  finish_ok (t);
  cr_assert_eq (rr_route_table_resolve (t, "administrator@cpandl.net",
                                        &canonical, &chain, &err), 1);
  cr_assert_str_eq (canonical, "administrator@adatum.com");
  cr_assert_eq (chain->len, 2);
  r0 = chain->pdata[0];
  r1 = chain->pdata[1];
  cr_assert_str_eq (r0->source, path);
  cr_assert_eq (r0->line, 3);
  cr_assert_str_eq (r0->key, "cpandl.net");
  cr_assert_eq (r0->key_kind, RR_KEY_DOMAIN);
  cr_assert_eq (r0->target_kind, RR_TARGET_DOMAIN);
  cr_assert_str_eq (r1->source, path);
  cr_assert_eq (r1->line, 2);
  cr_assert_eq (r1->target_kind, RR_TARGET_INBOUND);
}

Test (route, chain_ends_at_domain_without_rule)
{
  g_autoptr (RrRouteTable) t = load_text ("old.example  mid.example\n"
                                          "mid.example  new.example\n");
  g_autoptr (GPtrArray) chain = NULL;
  g_autofree char *canonical = NULL;

  finish_ok (t);
  cr_assert_eq (rr_route_table_resolve (t, "u@old.example", &canonical,
                                        &chain, NULL), 1);
  cr_assert_str_eq (canonical, "u@new.example");
  cr_assert_eq (chain->len, 2);
  cr_assert_eq (((const RrRoute *) chain->pdata[1])->line, 2);
}

Test (route, loop_is_found_at_load_time)
{
  g_autoptr (RrRouteTable) t = load_fixture ("loop.table");
  g_autofree char *path = fixture ("loop.table");
  g_autofree char *msg = finish_error (t, RR_ROUTE_ERROR_LOOP);
  g_autofree char *want = g_strdup_printf (
    "%s:2: routing loop: a.example -> b.example -> a.example\n"
    "%s:3: routing loop: b.example -> a.example -> b.example", path, path);

  cr_assert_str_eq (msg, want);
}

Test (route, loop_through_address_rule)
{
  g_autoptr (RrRouteTable) t = load_text ("x.example    y.example\n"
                                          "a@y.example  a@x.example\n");
  g_autofree char *msg = finish_error (t, RR_ROUTE_ERROR_LOOP);

  cr_assert_str_eq (msg, "t.table:2: routing loop: a@y.example -> "
                         "a@x.example -> a@y.example");
}

Test (route, loop_through_wildcard)
{
  g_autoptr (RrRouteTable) t = load_text (".example  sub.example\n");
  g_autofree char *msg = finish_error (t, RR_ROUTE_ERROR_LOOP);

  cr_assert_str_eq (msg, "t.table:1: routing loop: *.example -> sub.example "
                         "-> sub.example");
}

Test (route, resolve_refuses_a_loop_not_checked)
{
  g_autoptr (RrRouteTable) t = load_text ("a.example  b.example\n"
                                          "b.example  a.example\n");
  g_autoptr (GError) err = NULL;
  char *canonical = NULL;

  cr_assert_eq (rr_route_table_resolve (t, "u@A.example", &canonical, NULL,
                                        &err), -1);
  cr_assert_null (canonical);
  cr_assert_eq (err->code, RR_ROUTE_ERROR_LOOP);
  cr_assert_str_eq (err->message, "t.table:1: routing loop: u@A.example -> "
                                  "u@b.example -> u@a.example");
}

/* A table d0 -> d1 -> ... -> d<steps>, then inbound. */
static RrRouteTable *
chain_table (guint steps)
{
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; i < steps; i++)
    g_string_append_printf (text, "d%u.example  d%u.example\n", i, i + 1);
  g_string_append_printf (text, "d%u.example  inbound\n", steps);
  return load_text (text->str);
}

Test (route, chain_of_16_steps_is_fine)
{
  g_autoptr (RrRouteTable) t = chain_table (RR_ROUTE_MAX_STEPS);
  g_autoptr (GPtrArray) chain = NULL;
  g_autofree char *canonical = NULL;

  finish_ok (t);
  cr_assert_eq (rr_route_table_resolve (t, "u@d0.example", &canonical, &chain,
                                        NULL), 1);
  cr_assert_str_eq (canonical, "u@d16.example");
  cr_assert_eq (chain->len, 17); /* 16 steps and the final inbound */
}

Test (route, chain_of_17_steps_is_refused)
{
  g_autoptr (RrRouteTable) t = chain_table (RR_ROUTE_MAX_STEPS + 1);
  g_autofree char *msg = finish_error (t, RR_ROUTE_ERROR_CHAIN);
  g_autoptr (GError) err = NULL;
  char *canonical = NULL;

  cr_assert_str_eq (msg, "t.table:1: chain longer than 16 steps starting at "
                         "'d0.example'");
  cr_assert_eq (rr_route_table_resolve (t, "u@d0.example", &canonical, NULL,
                                        &err), -1);
  cr_assert_eq (err->code, RR_ROUTE_ERROR_CHAIN);
  cr_assert_str_eq (err->message, "t.table:1: chain longer than 16 steps "
                                  "starting at 'u@d0.example'");
  assert_resolves (t, "u@d1.example", "u@d17.example");
}

/* Domain rules g0 -> ... -> g7 (7 steps), then u@g7 runs 10 more steps. */
Test (route, chain_through_address_rule_counts_both_parts)
{
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (RrRouteTable) t = NULL;
  g_autofree char *msg = NULL;

  for (guint i = 0; i < 7; i++)
    g_string_append_printf (text, "g%u.example  g%u.example\n", i, i + 1);
  g_string_append (text, "u@g7.example  h0.example\n");
  for (guint i = 0; i < 9; i++)
    g_string_append_printf (text, "h%u.example  h%u.example\n", i, i + 1);
  t = load_text (text->str);
  msg = finish_error (t, RR_ROUTE_ERROR_CHAIN);
  cr_assert_str_eq (msg, "t.table:1: chain longer than 16 steps starting at "
                         "'u@g0.example'");
  assert_resolves (t, "v@g0.example", "v@g7.example");
  assert_resolves (t, "u@g1.example", "u@h9.example");
}

/* ---- errors ------------------------------------------------------------- */

static char *
fixture_error (const char *name, int code)
{
  g_autoptr (RrRouteTable) t = rr_route_table_new ();
  g_autofree char *path = fixture (name);
  g_autoptr (GError) err = NULL;

  cr_assert_not (rr_route_table_load_file (t, path, &err));
  cr_assert_eq (err->domain, RR_ROUTE_ERROR);
  cr_assert_eq (err->code, code);
  cr_assert_eq (rr_route_table_size (t), 0);
  return g_strdup (err->message);
}

#define assert_fixture_error(name, fmt, ...)                                   \
  do {                                                                         \
    g_autofree char *path_ = fixture (name);                                   \
    g_autofree char *msg_ = fixture_error (name, RR_ROUTE_ERROR_SYNTAX);       \
    g_autofree char *want_ = g_strdup_printf (fmt, __VA_ARGS__);               \
    cr_assert_str_eq (msg_, want_);                                            \
  } while (0)

Test (route, duplicate_key_in_one_file)
{
  assert_fixture_error ("bad-duplicate.table",
                        "%s:3: duplicate key 'CPANDL.NET' (first at line 1)",
                        path_);
}

Test (route, wrong_number_of_fields)
{
  assert_fixture_error ("bad-fields.table",
                        "%s:2: expected a key and a target, found 1 field\n"
                        "%s:3: expected a key and a target, found 3 fields",
                        path_, path_);
}

Test (route, bad_domains)
{
  assert_fixture_error ("bad-domain.table",
                        "%s:2: key 'bad..example': 'bad..example' is not a "
                        "valid domain\n"
                        "%s:3: target 'y@-bad-.example.': '-bad-.example.' is "
                        "not a valid domain", path_, path_);
}

Test (route, wildcard_target)
{
  assert_fixture_error ("bad-wildcard-target.table",
                        "%s:1: target '.adatum.com': a wildcard cannot be a "
                        "target", path_);
}

Test (route, every_bad_line_is_reported)
{
  assert_fixture_error (
    "bad-mixed.table",
    "%s:2: expected a key and a target, found 1 field\n"
    "%s:3: expected a key and a target, found 3 fields\n"
    "%s:4: key 'bad..example': 'bad..example' is not a valid domain\n"
    "%s:5: target '.adatum.com': a wildcard cannot be a target\n"
    "%s:7: duplicate key 'A.EXAMPLE' (first at line 6)",
    path_, path_, path_, path_, path_);
}

Test (route, other_bad_lines)
{
  g_autofree char *at = load_error ("a@  b.example\n", RR_ROUTE_ERROR_SYNTAX);
  g_autofree char *dot = load_error ("\n.  b.example\n", RR_ROUTE_ERROR_SYNTAX);
  g_autofree char *utf = load_error ("a.example \xff\n", RR_ROUTE_ERROR_SYNTAX);
  g_autoptr (RrRouteTable) t = rr_route_table_new ();
  g_autoptr (GError) err = NULL;

  cr_assert_str_eq (at, "t.table:1: key 'a@': 'a@' is not of the form "
                         "local@domain");
  cr_assert_str_eq (dot, "t.table:2: key '.': '' is not a valid domain");
  cr_assert_str_eq (utf, "t.table:1: line is not valid UTF-8");
  cr_assert_not (rr_route_table_load_data (t, "t.table", "a b\0c\n", 6, &err));
  cr_assert_str_eq (err->message, "t.table:1: line holds a NUL byte");
}

Test (route, latin1_comment_is_fine)
{
  g_autoptr (RrRouteTable) t = load_text ("a.example b.example # M\xfcller\n");

  cr_assert_eq (rr_route_table_size (t), 1);
}

Test (route, unreadable_file)
{
  g_autoptr (RrRouteTable) t = rr_route_table_new ();
  g_autofree char *path = fixture ("no-such.table");
  g_autofree char *dir = fixture ("");
  g_autofree char *want = g_strdup_printf ("%s: No such file or directory",
                                           path);
  g_autoptr (GError) err = NULL;
  g_autoptr (GError) err2 = NULL;

  cr_assert_not (rr_route_table_load_file (t, path, &err));
  cr_assert_eq (err->code, RR_ROUTE_ERROR_IO);
  cr_assert_str_eq (err->message, want);
  cr_assert_not (rr_route_table_load_file (t, dir, &err2));
  cr_assert_eq (err2->code, RR_ROUTE_ERROR_IO);
}

Test (route, crlf_comments_and_blank_lines)
{
  g_autoptr (RrRouteTable) t = load_fixture ("crlf.table");
  const char *key = NULL;
  g_autofree char *got = step (t, "u@b.example", &key);

  finish_ok (t);
  cr_assert_eq (rr_route_table_size (t), 2);
  cr_assert_str_eq (got, "(inbound)");
  cr_assert_str_eq (key, "b.example");
  assert_resolves (t, "u@a.example", "u@b.example");
}

Test (route, empty_table)
{
  g_autoptr (RrRouteTable) t = load_text ("# nothing here\n\n");
  g_autoptr (GPtrArray) lint = NULL;

  finish_ok (t);
  cr_assert_eq (rr_route_table_size (t), 0);
  assert_resolves (t, "u@adatum.com", "-");
  lint = rr_route_table_lint (t);
  cr_assert_eq (lint->len, 0);
  cr_assert_not (rr_route_table_may_match (t, "u@adatum.com", 12));
}

/* ---- flags and several files ------------------------------------------ */

Test (route, flag_overrides_file_rule)
{
  g_autoptr (RrRouteTable) t = load_fixture ("spec.table");
  g_autofree char *path = fixture ("spec.table");
  g_autofree char *lint = NULL;
  g_autofree char *want = NULL;
  g_autoptr (GError) err = NULL;

  cr_assert (rr_route_table_add_route (t, " cpandl.net = other.example ", 1,
                                       &err));
  finish_ok (t);
  cr_assert_eq (rr_route_table_size (t), 6);
  assert_resolves (t, "bob@cpandl.net", "bob@other.example");
  lint = joined_lint (t);
  want = g_strdup_printf ("%s:3: rule for 'cpandl.net' is overridden by "
                          "--route #1\n"
                          "%s:5: rule for 'internal.adatum.com' is redundant: "
                          "'.adatum.com' at %s:6 gives the same result",
                          path, path, path);
  cr_assert_str_eq (lint, want);
}

Test (route, flag_before_file_still_wins)
{
  g_autoptr (RrRouteTable) t = rr_route_table_new ();
  g_autofree char *path = fixture ("spec.table");
  g_autoptr (GError) err = NULL;
  g_autoptr (GPtrArray) chain = NULL;
  g_autofree char *canonical = NULL;

  cr_assert (rr_route_table_add_route (t, "CPANDL.NET=other.example", 1, &err));
  cr_assert (rr_route_table_load_file (t, path, &err));
  cr_assert_eq (rr_route_table_resolve (t, "bob@cpandl.net", &canonical,
                                        &chain, NULL), 1);
  cr_assert_str_eq (canonical, "bob@other.example");
  cr_assert_str_eq (((const RrRoute *) chain->pdata[0])->source, "--route");
  cr_assert_eq (((const RrRoute *) chain->pdata[0])->line, 1);
}

Test (route, flag_errors)
{
  g_autoptr (RrRouteTable) t = rr_route_table_new ();
  g_autoptr (GError) e1 = NULL;
  g_autoptr (GError) e2 = NULL;
  g_autoptr (GError) e3 = NULL;
  g_autoptr (GError) e4 = NULL;

  cr_assert (rr_route_table_add_route (t, "a.example=inbound", 1, NULL));
  cr_assert_not (rr_route_table_add_route (t, "A.EXAMPLE=b.example", 3, &e1));
  cr_assert_str_eq (e1->message, "--route #3: duplicate key 'A.EXAMPLE' "
                                 "(first at --route #1)");
  cr_assert_not (rr_route_table_add_route (t, "a.example", 4, &e2));
  cr_assert_str_eq (e2->message, "--route #4: 'a.example' is not of the form "
                                 "FROM=TO");
  cr_assert_not (rr_route_table_add_route (t, "x.example=a b", 5, &e3));
  cr_assert_str_eq (e3->message, "--route #5: 'x.example=a b' is not of the "
                                 "form FROM=TO");
  cr_assert_not (rr_route_table_add_route (t, "x.example=.y.example", 6, &e4));
  cr_assert_str_eq (e4->message, "--route #6: target '.y.example': a wildcard "
                                 "cannot be a target");
  cr_assert_eq (e4->code, RR_ROUTE_ERROR_SYNTAX);
  cr_assert_eq (rr_route_table_size (t), 1);
}

Test (route, first_file_wins)
{
  g_autoptr (RrRouteTable) t = load_fixture ("first.table");
  g_autofree char *first = fixture ("first.table");
  g_autofree char *second = fixture ("second.table");
  g_autofree char *lint = NULL;
  g_autofree char *want = NULL;

  cr_assert (rr_route_table_load_file (t, second, NULL));
  finish_ok (t);
  cr_assert_eq (rr_route_table_size (t), 2);
  assert_resolves (t, "bob@cpandl.net", "bob@first.example");
  assert_step (t, "bob@fabrikam.com", "(inbound)", "fabrikam.com");
  lint = joined_lint (t);
  want = g_strdup_printf ("%s:1: rule for 'cpandl.net' is shadowed by %s:2",
                          second, first);
  cr_assert_str_eq (lint, want);
}

/* ---- lint --------------------------------------------------------------- */

Test (route, lint_redundant_rules)
{
  g_autoptr (RrRouteTable) t = load_text (
    ".example          t.example\n"      /* 1 */
    "a.example         t.example\n"      /* 2: redundant */
    ".b.example        t.example\n"      /* 3: redundant */
    "c.example         other.example\n"  /* 4 */
    "x@c.example       other.example\n"  /* 5: redundant */
    "y@c.example       y@other.example\n"/* 6 */
    "z+1@c.example     other.example\n"  /* 7: might fall to z@, not told */
    "t.example         inbound\n"        /* 8 */
    "p@t.example       inbound\n");      /* 9: redundant */
  g_autofree char *lint = joined_lint (t);

  finish_ok (t);
  cr_assert_str_eq (lint,
    "t.table:2: rule for 'a.example' is redundant: '.example' at t.table:1 "
    "gives the same result\n"
    "t.table:3: rule for '.b.example' is redundant: '.example' at t.table:1 "
    "gives the same result\n"
    "t.table:5: rule for 'x@c.example' is redundant: 'c.example' at t.table:4 "
    "gives the same result\n"
    "t.table:9: rule for 'p@t.example' is redundant: 't.example' at t.table:8 "
    "gives the same result");
}

Test (route, lint_address_target_needs_delimiters_off)
{
  g_autoptr (RrRouteTable) t = load_text ("c.example    a@t.example\n"
                                          "x@c.example  a@t.example\n");
  g_autofree char *with = joined_lint (t);
  g_autofree char *without = NULL;

  /* x+ext@c.example gives a+ext@t.example through rule 2, a@t.example else. */
  cr_assert_str_eq (with, "");
  rr_route_table_set_delimiters (t, "");
  without = joined_lint (t);
  cr_assert_str_eq (without, "t.table:2: rule for 'x@c.example' is redundant: "
                             "'c.example' at t.table:1 gives the same result");
}

/* ---- may_match ---------------------------------------------------------- */

static gboolean
may_match (const RrRouteTable *t, const char *text)
{
  return rr_route_table_may_match (t, text, strlen (text));
}

Test (route, may_match_ascii)
{
  g_autoptr (RrRouteTable) t = load_text ("cpandl.net        adatum.com\n"
                                          "sales@fabrikam.com team@adatum.com\n"
                                          ".contoso.com      adatum.com\n");

  cr_assert (may_match (t, "To: Bob <bob@CPANDL.NET>"));
  cr_assert (may_match (t, "x@fabrikam.com"));
  cr_assert (may_match (t, "x@deep.sub.Contoso.com"));
  cr_assert_not (may_match (t, "To: bob@adatum.com, x@cpandl.org"));
  cr_assert_not (may_match (t, "cpandl.ne"));
  cr_assert_not (rr_route_table_may_match (t, "x@cpandl.net", 11));
}

Test (route, may_match_what_nameprep_folds)
{
  g_autoptr (RrRouteTable) t = load_text ("cpandl.net  adatum.com\n");
  /* Full-width letters and a soft hyphen: IDNA folds both away. */
  static const char wide[] = "x@\xef\xbd\x83pandl.net";
  static const char shy[] = "x@cpan\xc2\xad" "dl.net";

  assert_step (t, wide, "x@adatum.com", "cpandl.net");
  assert_step (t, shy, "x@adatum.com", "cpandl.net");
  cr_assert (may_match (t, wide));
  cr_assert (may_match (t, shy));
  cr_assert_not (may_match (t, "Zoë <x@cpandl.org>"));
}

Test (route, may_match_idna)
{
  g_autoptr (RrRouteTable) t = load_text ("bücher.example  inbound\n");

  cr_assert (may_match (t, "x@xn--BCHER-kva.example"));
  cr_assert (may_match (t, "x@bücher.example"));
  cr_assert (may_match (t, "Zoë <x@BÜCHER.EXAMPLE>"));
  cr_assert (may_match (t, "x@bücher\xe3\x80\x82" "example")); /* U+3002 dot */
  cr_assert_not (may_match (t, "Zoë <x@bucher.example>"));
  cr_assert_not (may_match (t, "x@xn--bcher.example \xff"));
}

Test (route, may_match_mixed_idna_forms)
{
  g_autoptr (RrRouteTable) t = load_text ("bücher.café.example  t.example\n");

  /* Such an address does route, so may_match must not rule it out. */
  assert_step (t, "x@xn--bcher-kva.Café.example", "x@t.example",
               "bücher.café.example");
  cr_assert (may_match (t, "x@xn--bcher-kva.Café.example"));
  cr_assert (may_match (t, "x@bücher.xn--caf-dma.example"));
  cr_assert_not (may_match (t, "x@bücher.example, y@café.test"));
}

/* Found by src/route_fuzz (testdata/fuzz/route/crash-bogus-punycode-label):
 * "xn--x-3" is no valid punycode, which folding lets through, and made the
 * whole key undecodable, so the Unicode spelling of its other labels was
 * ruled out although it routes. */
Test (route, may_match_bogus_punycode_label)
{
  g_autoptr (RrRouteTable) t = load_text ("xn--x-3.bücher.example  adatum.com\n");

  assert_step (t, "x@xn--x-3.bücher.example", "x@adatum.com", "xn--x-3.bücher.example");
  cr_assert (may_match (t, "x@xn--x-3.bücher.example"));
  cr_assert (may_match (t, "x@XN--X-3.xn--bcher-kva.example"));
  cr_assert_not (may_match (t, "x@xn--x-3.bucher.example"));
}

/* Found by src/route_fuzz (crash-long-key-backtracking): each ASCII label
 * was tried twice, as its "ASCII" and its "Unicode" form, so text that
 * matched most labels of a long IDN key took 2^labels steps to fail. */
Test (route, may_match_long_key_is_linear, .timeout = 20)
{
  g_autoptr (GString) key = g_string_new (NULL);
  g_autoptr (GString) text = g_string_new ("x@");
  g_autoptr (RrRouteTable) t = NULL;

  for (int i = 0; i < 40; i++)
    g_string_append (key, "a."), g_string_append (text, "a.");
  g_string_append (key, "bücher.example  adatum.com\n");
  g_string_append (text, "bücher.org");
  t = load_text (key->str);
  cr_assert_not (may_match (t, text->str));
}

/* Found by src/route_fuzz (crash-sharp-s, crash-nfkc-makes-capital): keys
 * are folded by GLib, which lower-cases, applies NFKC and lower-cases again;
 * case folding made "ß" "ss", and one pass missed the capital NFKC makes of
 * U+03D2. */
Test (route, may_match_folds_as_glib_does)
{
  g_autoptr (RrRouteTable) t = load_text ("straße.example  adatum.com\n"
                                          "\xcf\x92.example  adatum.com\n");

  assert_step (t, "x@straße.example", "x@adatum.com", "straße.example");
  cr_assert (may_match (t, "x@straße.example"));
  cr_assert (may_match (t, "x@STRAẞE.example")); /* U+1E9E lower-cases to ß */
  cr_assert_not (may_match (t, "x@strasse.example"));
  assert_step (t, "x@\xcf\x92.example", "x@adatum.com", "\xcf\x92.example");
  cr_assert (may_match (t, "x@\xcf\x92.example"));
  cr_assert (may_match (t, "x@\xcf\x85.example"));
}

/* ---- size ------------------------------------------------------------- */

Test (route, big_alias_table)
{
  g_autoptr (GString) text = g_string_new ("adatum.com  inbound\n");
  g_autoptr (RrRouteTable) t = NULL;

  for (guint i = 0; i < 20000; i++)
    g_string_append_printf (text, "user%u@cpandl.net  team%u@adatum.com\n", i,
                            i % 100);
  g_string_append (text, "cpandl.net  adatum.com\n");
  t = load_text (text->str);
  finish_ok (t);
  cr_assert_eq (rr_route_table_size (t), 20002);
  assert_resolves (t, "user19999@cpandl.net", "team99@adatum.com");
  assert_resolves (t, "User7+x@CPANDL.net", "team7+x@adatum.com");
  assert_resolves (t, "nobody@cpandl.net", "nobody@adatum.com");
}
