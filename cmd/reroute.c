/* reroute - rewrite or refile mail through a domain route table.
 *
 * This file only parses options, wires the library modules together and maps
 * their GErrors to sysexits codes; all mail logic lives in src/. */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "batch.h"
#include "lock.h"
#include "message.h"
#include "report.h"
#include "rewrite.h"
#include "route.h"

typedef struct {
  char **tables;
  char **routes;
  char *delimiter;
  char **recipients;
  char **args;
  gboolean resolve;
  gboolean check;
  gboolean visible;
  gboolean quiet;
  gboolean version;
  gboolean no_recurse;
  int lock_timeout;
  int stale_lock;
} Options;

static Options opt = { .lock_timeout = 30, .stale_lock = 300 };

static const GOptionEntry entries[] = {
  { "table", 't', 0, G_OPTION_ARG_FILENAME_ARRAY, &opt.tables,
    "Route table file (repeatable; the first table with a key wins)", "FILE" },
  { "route", 'r', 0, G_OPTION_ARG_STRING_ARRAY, &opt.routes,
    "One rule FROM=TO (repeatable; overrides a table rule with the same key)", "FROM=TO" },
  { "delimiter", 0, 0, G_OPTION_ARG_STRING, &opt.delimiter,
    "Characters that start a +extension in a local part (default \"+\")", "CHARS" },
  { "resolve", 0, 0, G_OPTION_ARG_NONE, &opt.resolve,
    "Print each ADDRESS argument's canonical address and rule chain", NULL },
  { "check", 0, 0, G_OPTION_ARG_NONE, &opt.check,
    "Load the tables, report errors and warn about rules that never apply", NULL },
  { "recipient", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt.recipients,
    "Envelope recipient, as an MTA gives it (repeatable)", "ADDR" },
  { "visible", 0, 0, G_OPTION_ARG_NONE, &opt.visible,
    "Also rewrite the To and Cc headers", NULL },
  { "no-recurse", 0, 0, G_OPTION_ARG_NONE, &opt.no_recurse,
    "Do not walk a Maildir's Maildir++ subfolders", NULL },
  { "lock-timeout", 0, 0, G_OPTION_ARG_INT, &opt.lock_timeout,
    "Seconds to wait for a busy mbox lock (default 30)", "SECONDS" },
  { "stale-lock", 0, 0, G_OPTION_ARG_INT, &opt.stale_lock,
    "Seconds after which a dotlock is stale (default 300)", "SECONDS" },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt.quiet, "Print only errors", NULL },
  { "version", 'V', 0, G_OPTION_ARG_NONE, &opt.version, "Print the version and exit", NULL },
  { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt.args, NULL,
    "[SPOOL...|-|ADDRESS...]" },
  { NULL },
};

/* Prints a (possibly multi-line) error, one "reroute: " line per problem. */
static void
print_error (const char *place, const char *message)
{
  g_auto (GStrv) lines = g_strsplit (message, "\n", -1);

  for (char **l = lines; *l; l++)
    if (**l)
      fprintf (stderr, "reroute: %s%s%s\n", place ? place : "", place ? ": " : "", *l);
}

static int
route_exit_code (const GError *error)
{
  if (g_error_matches (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_IO))
    return EX_NOINPUT;
  return EX_DATAERR;
}

static RrRouteTable *
load_table (int *status)
{
  g_autoptr (RrRouteTable) table = rr_route_table_new ();
  g_autoptr (GError) error = NULL;
  guint i = 0;

  if (opt.delimiter)
    rr_route_table_set_delimiters (table, opt.delimiter);
  for (char **t = opt.tables; t && *t && !error; t++)
    rr_route_table_load_file (table, *t, &error);
  for (char **r = opt.routes; r && *r && !error; r++)
    rr_route_table_add_route (table, *r, ++i, &error);
  if (!error)
    rr_route_table_finish (table, &error);
  if (error)
    {
      print_error (NULL, error->message);
      *status = route_exit_code (error);
      return NULL;
    }
  return g_steal_pointer (&table);
}

static int
run_check (const RrRouteTable *table)
{
  g_autoptr (GPtrArray) warnings = rr_route_table_lint (table);

  for (guint i = 0; i < warnings->len && !opt.quiet; i++)
    fprintf (stderr, "reroute: warning: %s\n", (char *) warnings->pdata[i]);
  if (!opt.quiet)
    printf ("reroute: %u rule%s, %u warning%s\n", rr_route_table_size (table),
            rr_route_table_size (table) == 1 ? "" : "s", warnings->len,
            warnings->len == 1 ? "" : "s");
  return EX_OK;
}

static int
run_resolve (const RrRouteTable *table)
{
  int status = EX_OK;

  for (char **a = opt.args; a && *a; a++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) chain = NULL;
      g_autofree char *canonical = NULL;
      int found = rr_route_table_resolve (table, *a, &canonical, &chain, &error);

      if (found < 0)
        {
          print_error (*a, error->message);
          status = EX_DATAERR;
          continue;
        }
      if (found == 0)
        {
          printf ("%s: not routed\n", *a);
          continue;
        }
      printf ("%s -> %s\n", *a, canonical);
      for (guint i = 0; i < chain->len; i++)
        {
          const RrRoute *r = chain->pdata[i];
          printf ("\t%s:%u\t%s -> %s\n", r->source, r->line, r->key, r->target);
        }
    }
  return status;
}

static GBytes *
read_all (int fd, GError **error)
{
  GByteArray *buf = g_byte_array_new ();
  guint8 chunk[65536];

  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);
      if (n == 0)
        return g_byte_array_free_to_bytes (buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "cannot read: %s", g_strerror (errno));
          g_byte_array_free (buf, TRUE);
          return NULL;
        }
      g_byte_array_append (buf, chunk, n);
    }
}

static gboolean
write_segments (const RrRewrite *rw, FILE *out)
{
  for (guint i = 0; i < rr_rewrite_get_n_segments (rw); i++)
    {
      const char *data;
      gsize len;
      rr_rewrite_get_segment (rw, i, &data, &len);
      if (fwrite (data, 1, len, out) != len)
        return FALSE;
    }
  return fflush (out) == 0;
}

/* The stdin filter: one message in, the rewritten message out. A message we
 * must not rewrite goes out as it came, so a pipeline never loses it. */
static int
run_filter (const RrRouteTable *table)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) input = read_all (STDIN_FILENO, &error);
  g_autoptr (RrMessage) msg = NULL;
  g_autoptr (RrRewrite) rw = NULL;
  RrRewriteOptions ro = { opt.visible, (const char *const *) opt.recipients };
  gsize len = 0;
  const char *data;

  if (input == NULL)
    return print_error ("<stdin>", error->message), EX_IOERR;
  data = g_bytes_get_data (input, &len);
  msg = rr_message_new (data, len, &error);
  if (msg == NULL)
    return print_error ("<stdin>", error->message), EX_DATAERR;
  rw = rr_rewrite_new (msg, table, &ro, &error);
  if (rw == NULL)
    {
      print_error ("<stdin>", error->message);
      if (fwrite (data, 1, len, stdout) != len || fflush (stdout) != 0)
        return print_error ("<stdout>", g_strerror (errno)), EX_IOERR;
      return EX_DATAERR;
    }
  if (!write_segments (rw, stdout))
    return print_error ("<stdout>", g_strerror (errno)), EX_IOERR;
  return EX_OK;
}

static int
usage_error (GOptionContext *ctx G_GNUC_UNUSED, const char *message)
{

  fprintf (stderr, "reroute: %s\nTry 'reroute --help' for more information.\n", message);
  return EX_USAGE;
}

static gboolean
is_stdin (void)
{
  guint n = opt.args ? g_strv_length (opt.args) : 0;

  return n == 0 || (n == 1 && strcmp (opt.args[0], "-") == 0);
}

static int
check_spool_args (GOptionContext *ctx)
{
  if (!opt.args && isatty (STDIN_FILENO))
    return usage_error (ctx, "no spool given and standard input is a terminal");
  for (char **a = opt.args; a && *a; a++)
    if (strcmp (*a, "-") == 0 && !is_stdin ())
      return usage_error (ctx, "'-' (standard input) cannot be mixed with spools");
  if (opt.lock_timeout < 0 || opt.stale_lock < 0)
    return usage_error (ctx, "--lock-timeout and --stale-lock take seconds, 0 or more");
  return EX_OK;
}

/* Severity of a failure's exit status: the worst one seen decides. */
static int
severity (int status)
{
  static const int order[] = { EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, EX_CANTCREAT, EX_IOERR };

  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    if (order[i] == status)
      return i + 1;
  return 0;
}

static int
batch_exit_code (const GError *e)
{
  if (e->domain == RR_BATCH_ERROR)
    return EX_NOINPUT;
  if (g_error_matches (e, RR_LOCK_ERROR, RR_LOCK_ERROR_BUSY))
    return EX_TEMPFAIL;
  return EX_IOERR;
}

static int
run_spools (const RrRouteTable *table)
{
  g_autoptr (RrReport) report = rr_report_new (stdout, stderr, opt.quiet);
  RrBatchOptions bo = { table, { opt.visible, (const char *const *) opt.recipients },
                        !opt.no_recurse, opt.lock_timeout, opt.stale_lock };
  const GPtrArray *errors;
  int status = EX_OK;

  for (char **a = opt.args; *a; a++)
    rr_batch_run (&bo, *a, report);
  rr_report_print_summary (report);
  errors = rr_report_get_errors (report);
  if (rr_report_get_skipped (report) > 0)
    status = EX_DATAERR;
  for (guint i = 0; i < errors->len; i++)
    {
      int s = batch_exit_code (errors->pdata[i]);
      if (severity (s) > severity (status))
        status = s;
    }
  return status;
}

static GOptionContext *
make_context (void)
{
  GOptionContext *ctx = g_option_context_new ("[SPOOL... | -] | --resolve ADDRESS... | --check");

  g_option_context_set_summary (ctx,
    "Rewrite the recipients of the messages in Maildir and mbox SPOOLs in place\n"
    "through a route table, or of one message from standard input to standard\n"
    "output; resolve addresses; or check tables.");
  g_option_context_set_description (ctx,
    "Examples:\n"
    "  reroute -t routes --check\n"
    "  reroute -t routes --resolve administrator@cpandl.net\n"
    "  reroute -t routes ~/Maildir /var/mail/administrator\n"
    "  reroute -t routes < message > rewritten\n"
    "  reroute -r cpandl.net=adatum.com -r adatum.com=inbound - < message\n\n"
    "Exit status: 0 ok, 64 usage, 65 bad table or message, 66 table unreadable\n"
    "or not a spool, 74 I/O error, 75 mbox locked. See reroute(1), reroute.table(5).");
  g_option_context_add_main_entries (ctx, entries, NULL);
  return ctx;
}

static int
run (GOptionContext *ctx)
{
  g_autoptr (RrRouteTable) table = NULL;
  int status = EX_OK;

  if (opt.version)
    return printf ("reroute %s\n", PACKAGE_VERSION), EX_OK;
  if (opt.resolve && opt.check)
    return usage_error (ctx, "--resolve and --check exclude each other");
  if (!opt.resolve && !opt.check && (status = check_spool_args (ctx)) != EX_OK)
    return status;
  table = load_table (&status);
  if (table == NULL)
    return status;
  if (opt.check)
    return run_check (table);
  if (opt.resolve)
    return run_resolve (table);
  g_mime_init ();
  status = is_stdin () ? run_filter (table) : run_spools (table);
  g_mime_shutdown ();
  return status;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = make_context ();
  g_autoptr (GError) error = NULL;
  int status;

  setlocale (LC_ALL, "");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return usage_error (ctx, error->message);
  status = run (ctx);
  g_strfreev (opt.tables);
  g_strfreev (opt.routes);
  g_strfreev (opt.recipients);
  g_strfreev (opt.args);
  g_free (opt.delimiter);
  return status;
}
