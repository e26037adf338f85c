/* route_fuzz.c - fuzzing harness for the route table: parsing, the
 * load-time chain check, lint, lookup and resolution.
 *
 * Input: up to three parts separated by NUL bytes: a table file, a second
 * table file (loaded after the first, so it can be shadowed by it), and
 * -r/--route flags, one FROM=TO a line. A plain table file is a valid input.
 *
 * Invariants checked (see route.h and SPEC.md, "Route table"):
 *   - load errors are syntax errors; finish() errors are loops or chains;
 *   - once finish() accepted the table, resolving any address never loops
 *     and never runs past the step limit (the SPEC makes both table errors
 *     found at load time);
 *   - lookup() and resolve() agree on whether, and by which rule, an address
 *     is routed; a routed address is one may_match() says yes to;
 *   - resolution is idempotent: the canonical address resolves to itself
 *     (through an "inbound" rule) or is not routed at all. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "fuzz.h"
#include "route.h"

#define MAX_PROBES 256

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  return 0;
}

/* Addresses that some rule written in @text may apply to: each token as an
 * address, a domain or a wildcard's subdomain, with and without +extension. */
static void
add_probes (GPtrArray *probes, const char *text)
{
  g_auto (GStrv) tokens = g_strsplit_set (text, " \t\r\n\v\f#=", -1);

  for (guint i = 0; tokens[i] && probes->len < MAX_PROBES; i++)
    {
      const char *t = tokens[i];
      const char *at = strrchr (t, '@');

      if (t[0] == '\0')
        continue;
      if (at && at > t)
        {
          g_ptr_array_add (probes, g_strdup (t));
          g_ptr_array_add (probes, g_strdup_printf ("%.*s+fz%s", (int) (at - t), t, at));
        }
      else if (t[0] == '@')
        g_ptr_array_add (probes, g_strconcat ("postmaster", t, NULL));
      else if (t[0] == '.')
        g_ptr_array_add (probes, g_strconcat ("x@sub", t, NULL));
      else
        {
          g_ptr_array_add (probes, g_strconcat ("postmaster@", t, NULL));
          g_ptr_array_add (probes, g_strconcat ("p+fz@", t, NULL));
        }
    }
}

static void
check_address (const RrRouteTable *table, const char *address)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) error2 = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *again = NULL;
  g_autofree char *step = NULL;
  g_autoptr (GPtrArray) chain = NULL;
  const RrRoute *first = rr_route_table_lookup (table, address, &step);
  int rc = rr_route_table_resolve (table, address, &canonical, &chain, &error);
  int rc2;

  if (rc < 0)
    {
      FUZZ_CHECK (error != NULL && error->domain == RR_ROUTE_ERROR);
      fprintf (stderr, "resolve %s: %s\n", address, error->message);
      FUZZ_CHECK (!"finish() accepted a table on which an address fails to resolve");
    }
  if (rc == 0)
    {
      FUZZ_CHECK (first == NULL && canonical == NULL && chain == NULL);
      return;
    }
  FUZZ_CHECK (first != NULL && canonical != NULL && chain != NULL && chain->len > 0);
  FUZZ_CHECK (chain->pdata[0] == first);
  FUZZ_CHECK ((step == NULL) == (first->target_kind == RR_TARGET_INBOUND));
  FUZZ_CHECK (rr_route_table_may_match (table, address, strlen (address)));

  rc2 = rr_route_table_resolve (table, canonical, &again, NULL, &error2);
  FUZZ_CHECK (rc2 >= 0);
  FUZZ_CHECK (rc2 == 0 || strcmp (again, canonical) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (RrRouteTable) table = rr_route_table_new ();
  g_autoptr (GPtrArray) probes = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) lint = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_malloc (size + 1);
  const char *parts[3] = { NULL, NULL, NULL };
  gsize lens[3] = { 0, 0, 0 };
  gsize at = 0;
  gboolean ok = TRUE;

  /* Split at the first two NULs; the table parts keep their exact bytes. */
  for (guint i = 0; i < 3 && at <= size; i++)
    {
      const char *nul = i < 2 ? memchr (data + at, '\0', size - at) : NULL;
      parts[i] = (const char *) data + at;
      lens[i] = nul ? (gsize) (nul - (const char *) data) - at : size - at;
      at += lens[i] + 1;
    }
  memcpy (text, data, size);
  text[size] = '\0';

  for (guint i = 0; i < 2 && parts[i]; i++)
    {
      g_autoptr (GError) e = NULL;
      if (!rr_route_table_load_data (table, i ? "second.table" : "first.table", parts[i],
                                     lens[i], &e))
        {
          FUZZ_CHECK (e && e->domain == RR_ROUTE_ERROR && e->code == RR_ROUTE_ERROR_SYNTAX);
          ok = FALSE;
        }
    }
  if (parts[2])
    {
      g_autofree char *flags = g_strndup (parts[2], lens[2]);
      g_auto (GStrv) lines = g_strsplit (flags, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        {
          g_autoptr (GError) e = NULL;
          if (lines[i][0] == '\0')
            continue;
          if (!rr_route_table_add_route (table, lines[i], i + 1, &e))
            {
              FUZZ_CHECK (e && e->domain == RR_ROUTE_ERROR
                          && e->code == RR_ROUTE_ERROR_SYNTAX);
              ok = FALSE;
            }
        }
    }

  if (!rr_route_table_finish (table, &error))
    {
      FUZZ_CHECK (error && error->domain == RR_ROUTE_ERROR
                  && (error->code == RR_ROUTE_ERROR_LOOP || error->code == RR_ROUTE_ERROR_CHAIN)
                  && error->message[0] != '\0');
      ok = FALSE;
    }
  lint = rr_route_table_lint (table);
  FUZZ_CHECK (lint != NULL);
  (void) rr_route_table_size (table);
  if (!ok)
    return 0;

  /* The text with NULs made blanks, so tokens of every part are probed. */
  for (gsize i = 0; i < size; i++)
    if (text[i] == '\0')
      text[i] = ' ';
  add_probes (probes, text);
  for (guint i = 0; i < probes->len; i++)
    check_address (table, probes->pdata[i]);
  return 0;
}
