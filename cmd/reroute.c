/* reroute - rewrite or refile mail through a domain route table.
 *
 * This file only parses options, wires the library modules together and maps
 * their GErrors to sysexits codes; all mail logic lives in src/. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sysexits.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "batch.h"
#include "deliver.h"
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
  char *deliver;
  char *fallback;   /* --default */
  char *from;
  char *mbox_format;
  char *owner;
  char *report;
  gboolean copy;
  gboolean dry_run;
  gboolean verbose;
  gboolean syslog;
  char *run_lock;
  int jobs;
} Options;

static Options opt = { .lock_timeout = -1, .stale_lock = 300 };

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
  { "deliver", 0, 0, G_OPTION_ARG_FILENAME, &opt.deliver,
    "Refile into the mailbox TEMPLATE names (%u %d %a %%; ending in / is a Maildir)",
    "TEMPLATE" },
  { "copy", 0, 0, G_OPTION_ARG_NONE, &opt.copy,
    "With --deliver, keep refiled messages in the source spool too", NULL },
  { "default", 0, 0, G_OPTION_ARG_FILENAME, &opt.fallback,
    "Delivering one message from stdin, put an unrouted one here", "TEMPLATE" },
  { "from", 0, 0, G_OPTION_ARG_STRING, &opt.from,
    "Envelope sender for the From_ line of mbox deliveries", "SENDER" },
  { "mbox-format", 0, 0, G_OPTION_ARG_STRING, &opt.mbox_format,
    "mbox format written: mboxrd (default), mboxo, mboxcl, mboxcl2", "FORMAT" },
  { "owner", 0, 0, G_OPTION_ARG_STRING, &opt.owner,
    "Owner of mailboxes reroute creates, when run as root", "USER[:GROUP]" },
  { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt.dry_run,
    "Read everything, change nothing, and report what would be done", NULL },
  { "report", 0, 0, G_OPTION_ARG_STRING, &opt.report,
    "Report format: text (default) or json (JSON Lines)", "FORMAT" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt.verbose,
    "Also print one line per routed message in a real run", NULL },
  { "syslog", 0, 0, G_OPTION_ARG_NONE, &opt.syslog,
    "Also send problems and the summary to syslog (facility mail)", NULL },
  { "lock", 0, 0, G_OPTION_ARG_FILENAME, &opt.run_lock,
    "Hold FILE locked for the run, so that two runs never overlap", "FILE" },
  { "jobs", 'j', 0, G_OPTION_ARG_INT, &opt.jobs,
    "Threads reading messages ahead (default: one per processor)", "N" },
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
      {
        fprintf (stderr, "reroute: %s%s%s\n", place ? place : "", place ? ": " : "", *l);
        if (opt.syslog)
          syslog (LOG_ERR, "%s%s%s", place ? place : "", place ? ": " : "", *l);
      }
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
static RrReport *
new_report (void)
{
  RrReport *r = rr_report_new (stdout, stderr, opt.quiet);

  rr_report_configure (r, g_strcmp0 (opt.report, "json") == 0 ? RR_REPORT_JSON : RR_REPORT_TEXT,
                       opt.dry_run || opt.verbose, opt.dry_run);
  if (opt.syslog)
    rr_report_use_syslog (r);
  return r;
}

/* Reads and examines the one message on stdin. Returns EX_OK, or the exit
 * status of what went wrong (reported). */
static int
read_message (const RrRouteTable *table, GBytes **input, RrMessage **msg, RrRewrite **rw)
{
  g_autoptr (GError) error = NULL;
  RrRewriteOptions ro = { opt.visible, (const char *const *) opt.recipients };
  gsize len = 0;
  const char *data;

  if ((*input = read_all (STDIN_FILENO, &error)) == NULL)
    return print_error ("<stdin>", error->message), opt.deliver ? EX_TEMPFAIL : EX_IOERR;
  data = g_bytes_get_data (*input, &len);
  if ((*msg = rr_message_new (data, len, &error)) == NULL)
    return print_error ("<stdin>", error->message), EX_DATAERR;
  if ((*rw = rr_rewrite_new (*msg, table, &ro, &error)) == NULL)
    return print_error ("<stdin>", error->message), EX_DATAERR;
  return EX_OK;
}

/* -n on stdin: what would be done, as a report on stdout. */
static int
report_stdin (const RrMessage *msg, const RrRewrite *rw, RrAction action,
              const char *const *dests, int status)
{
  g_autoptr (RrReport) report = new_report ();
  g_autofree char *id = rr_message_get_message_id (msg);
  RrReportEntry e = { "<stdin>", id, rw, action, dests, rr_rewrite_get_size (rw) };

  rr_report_scanned (report, rr_message_get_length (msg));
  if (action == RR_ACTION_REWRITE && !rr_rewrite_changes (rw))
    rr_report_unchanged (report);
  else
    rr_report_action (report, &e);
  rr_report_print_summary (report);
  return status;
}

/* The stdin filter: one message in, the rewritten message out. A message we
 * must not rewrite goes out as it came, so a pipeline never loses it. */
static int
run_filter (const RrRouteTable *table)
{
  g_autoptr (GBytes) input = NULL;
  g_autoptr (RrMessage) msg = NULL;
  g_autoptr (RrRewrite) rw = NULL;
  const char *stdout_dest[] = { "-", NULL };
  int status = read_message (table, &input, &msg, &rw);
  gsize len = 0;
  const char *data = input ? g_bytes_get_data (input, &len) : NULL;

  if (status == EX_OK && opt.dry_run)
    return report_stdin (msg, rw, RR_ACTION_REWRITE, stdout_dest, EX_OK);
  if (msg && !rw && !opt.dry_run)
    {
      if (fwrite (data, 1, len, stdout) != len || fflush (stdout) != 0)
        return print_error ("<stdout>", g_strerror (errno)), EX_IOERR;
    }
  if (status != EX_OK)
    return status;
  if (!write_segments (rw, stdout))
    return print_error ("<stdout>", g_strerror (errno)), EX_IOERR;
  return EX_OK;
}

/* Exit status of a failed delivery by the MDA: the MTA retries on 75. */
static int
mda_exit_code (const GError *e)
{
  if (g_error_matches (e, RR_DELIVER_ERROR, RR_DELIVER_ERROR_UNSAFE))
    return EX_DATAERR;
  return EX_TEMPFAIL;
}

/* The first recipient's address, for --default's template. */
static const char *
first_recipient (const RrRewrite *rw)
{
  const GArray *r = rr_rewrite_get_recipients (rw);

  return r->len > 0 ? g_array_index (r, RrReroute, 0).address : "MAILER-DAEMON";
}

static int
deliver_one (const RrRefileOptions *ro, const RrMessage *msg, const RrRewrite *rw,
             const GPtrArray *to, const char *data, gsize len)
{
  g_autoptr (RrRefile) rf = rr_refile_new (ro, NULL, NULL);
  g_autoptr (GString) bytes = g_string_sized_new (rr_rewrite_get_size (rw));
  g_autoptr (GError) error = NULL;
  gsize start = rr_message_get_header_start (msg);
  /* The identity leaves out the From_ line: an MTA's retry writes a new
   * date there, and must still find the copy an earlier attempt made. */
  g_autofree char *key = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                      (const guchar *) data + start, len - start);
  const char *from = g_str_has_prefix (data, "\xEF\xBB\xBF") ? data + 3 : data;
  RrRefileSource src = { key, (time_t) rr_message_get_date (msg), NULL, NULL, 0, FALSE, NULL,
                         NULL };

  if (data + start > from)  /* the message came with its own From_ line */
    {
      src.from_line = from;
      src.from_line_len = data + start - from;
    }
  rr_rewrite_append (rw, bytes);
  if (!rr_refile_deliver (rf, &src, to, bytes->str + start, bytes->len - start, &error)
      || !rr_refile_flush (rf, &error))
    return print_error ("<stdin>", error->message), mda_exit_code (error);
  return EX_OK;
}

/* The delivery agent: one message from stdin into its users' mailboxes. */
static int
run_deliver (const RrRouteTable *table, const RrRefileOptions *ro)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) input = NULL;
  g_autoptr (RrMessage) msg = NULL;
  g_autoptr (RrRewrite) rw = NULL;
  g_autoptr (GPtrArray) to = g_ptr_array_new ();
  g_auto (GStrv) dests = NULL;
  RrRefileOptions dro = *ro;
  int status = read_message (table, &input, &msg, &rw);
  gsize len = 0;
  const char *data;

  if (status != EX_OK)
    return status;
  data = g_bytes_get_data (input, &len);
  for (guint i = 0; i < rr_rewrite_get_canonical (rw)->len; i++)
    g_ptr_array_add (to, rr_rewrite_get_canonical (rw)->pdata[i]);
  if (to->len == 0 && opt.fallback == NULL)
    return print_error ("<stdin>", "no rule routes any recipient, and no --default"), EX_NOUSER;
  if (to->len == 0)
    {
      dro.template = opt.fallback;
      g_ptr_array_add (to, (gpointer) first_recipient (rw));
    }
  if ((dests = rr_refile_destinations (&dro, to, &error)) == NULL)
    return print_error ("<stdin>", error->message), EX_DATAERR;
  if (!opt.dry_run && (status = deliver_one (&dro, msg, rw, to, data, len)) != EX_OK)
    return status;
  if (opt.dry_run || opt.verbose || opt.report)
    return report_stdin (msg, rw, RR_ACTION_REFILE, (const char *const *) dests, EX_OK);
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
  if (opt.lock_timeout < -1 || opt.stale_lock < 0)
    return usage_error (ctx, "--lock-timeout and --stale-lock take seconds, 0 or more");
  if (opt.jobs < 0 || opt.jobs > 256)
    return usage_error (ctx, "--jobs takes a number of threads, 1 to 256 (0: one per processor)");
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
  if (g_error_matches (e, RR_DELIVER_ERROR, RR_DELIVER_ERROR_CREATE))
    return EX_CANTCREAT;
  return EX_IOERR;
}

/* --owner USER[:GROUP] */
static gboolean
parse_owner (RrDeliverOptions *d, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (opt.owner, ":", 2);
  struct passwd *pw = getpwnam (parts[0]);
  struct group *gr = parts[1] ? getgrnam (parts[1]) : NULL;

  if (pw == NULL || (parts[1] && gr == NULL))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--owner %s: no such user or group", opt.owner);
      return FALSE;
    }
  d->owner_set = TRUE;
  d->uid = pw->pw_uid;
  d->gid = gr ? gr->gr_gid : pw->pw_gid;
  return TRUE;
}

static gboolean
refile_options (RrRefileOptions *ro, GError **error)
{
  *ro = (RrRefileOptions){ opt.deliver, opt.from, { 0 } };
  ro->deliver.lock_timeout = opt.lock_timeout;
  ro->deliver.stale_lock = opt.stale_lock;
  if (opt.mbox_format && !rr_mbox_format_parse (opt.mbox_format, &ro->deliver.format))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--mbox-format %s: not one of mboxrd, mboxo, mboxcl, mboxcl2",
                   opt.mbox_format);
      return FALSE;
    }
  return opt.owner == NULL || parse_owner (&ro->deliver, error);
}

/* The size of the one mbox named, for a percentage; 0 otherwise. */
static guint64
single_mbox_size (void)
{
  struct stat st;

  if (g_strv_length (opt.args) != 1 || stat (opt.args[0], &st) != 0 || !S_ISREG (st.st_mode))
    return 0;
  return st.st_size;
}

/* Seconds a run waits for --lock FILE: 0 unless --lock-timeout was given. */
static guint run_lock_wait;

/* --lock FILE: a run lock; a second run exits 75 (after --lock-timeout). */
static RrLock *
take_run_lock (int *fd, int *status)
{
  g_autoptr (GError) error = NULL;
  RrLock *lock;

  *fd = open (opt.run_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*fd < 0)
    {
      print_error (opt.run_lock, g_strerror (errno));
      *status = EX_CANTCREAT;
      return NULL;
    }
  /* Overlapping cron runs: the second gives up at once unless told to wait. */
  lock = rr_lock_acquire_fcntl (opt.run_lock, *fd, run_lock_wait, &error);
  if (lock == NULL)
    {
      print_error (NULL, error->message);
      *status = EX_TEMPFAIL;
    }
  return lock;
}

static int
run_spools (const RrRouteTable *table, const RrRefileOptions *ro)
{
  g_autoptr (RrReport) report = new_report ();
  RrBatchOptions bo = { table, { opt.visible, (const char *const *) opt.recipients },
                        !opt.no_recurse, opt.lock_timeout, opt.stale_lock,
                        opt.deliver ? ro : NULL, opt.copy, opt.dry_run, opt.jobs };
  const GPtrArray *errors;
  int status = EX_OK;

  if (isatty (STDERR_FILENO) && !opt.quiet)
    rr_report_show_progress (report, stderr, single_mbox_size ());
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
    "  reroute -t routes --deliver '/var/vmail/%d/%u/' /var/mail/administrator\n"
    "  reroute -t routes < message > rewritten\n"
    "  reroute -r cpandl.net=adatum.com -r adatum.com=inbound - < message\n\n"
    "Exit status: 0 ok, 64 usage, 65 bad table or message, 66 table unreadable\n"
    "or not a spool, 67 nothing routes the message (delivery agent), 73 cannot\n"
    "create a mailbox or lock file, 74 I/O error, 75 locked or temporary failure.\n"
    "See reroute(1) and reroute.table(5).");
  g_option_context_add_main_entries (ctx, entries, NULL);
  return ctx;
}

static int
run (GOptionContext *ctx)
{
  g_autoptr (RrRouteTable) table = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (RrLock) run_lock = NULL;
  RrRefileOptions ro;
  int run_lock_fd = -1;
  int status = EX_OK;

  if (opt.version)
    return printf ("reroute %s\n", PACKAGE_VERSION), EX_OK;
  if (opt.resolve && opt.check)
    return usage_error (ctx, "--resolve and --check exclude each other");
  if ((opt.copy || opt.fallback || opt.from || opt.mbox_format || opt.owner) && !opt.deliver)
    return usage_error (ctx, "--copy, --default, --from, --mbox-format and --owner go with --deliver");
  if (opt.report && strcmp (opt.report, "json") != 0 && strcmp (opt.report, "text") != 0)
    return usage_error (ctx, "--report takes text or json");
  if (!opt.resolve && !opt.check && (status = check_spool_args (ctx)) != EX_OK)
    return status;
  run_lock_wait = MAX (opt.lock_timeout, 0);
  if (opt.lock_timeout < 0)
    opt.lock_timeout = 30;  /* mailbox locks wait 30 s unless told otherwise */
  table = load_table (&status);
  if (table == NULL)
    return status;
  if (opt.check)
    return run_check (table);
  if (opt.resolve)
    return run_resolve (table);
  if (!refile_options (&ro, &error))
    return usage_error (ctx, error->message);
  if (opt.run_lock && (run_lock = take_run_lock (&run_lock_fd, &status)) == NULL)
    return status;
  g_mime_init ();
  if (!is_stdin ())
    status = run_spools (table, &ro);
  else
    status = opt.deliver ? run_deliver (table, &ro) : run_filter (table);
  g_mime_shutdown ();
  g_clear_pointer (&run_lock, rr_lock_release);
  if (run_lock_fd >= 0)
    close (run_lock_fd);
  return status;
}

/* The entry for @word when it is an option whose value is the next word. */
static const GOptionEntry *
wants_next (const char *word)
{
  for (const GOptionEntry *e = entries; e->long_name; e++)
    if (e->arg != G_OPTION_ARG_NONE && *e->long_name
        && ((word[0] == '-' && word[1] && word[1] == e->short_name && word[2] == '\0')
            || (g_str_has_prefix (word, "--") && strcmp (word + 2, e->long_name) == 0)))
      return e;
  return NULL;
}

/* GLib takes a short option's value only from the next word; getopt, and so
 * the hands of every mail administrator, also attach it: -j2, -tFILE. Such a
 * word is split in two before GLib parses. (transfer container) */
static char **
split_attached (int argc, char **argv)
{
  char **out = g_new0 (char *, 2 * argc + 1);
  gboolean value = FALSE;
  int n = 0;

  for (int i = 0; i < argc; i++)
    {
      char *w = argv[i];
      char opt_word[3] = { '-', w[0] ? w[1] : 0, 0 };
      if (i > 0 && !value && w[0] == '-' && w[1] && w[1] != '-' && w[2] && wants_next (opt_word))
        {
          out[n++] = g_strdup (opt_word);
          out[n++] = g_strdup (w + 2);
          value = FALSE;
          continue;
        }
      out[n++] = g_strdup (w);
      if (i > 0 && !value && strcmp (w, "--") == 0)
        {
          while (++i < argc)
            out[n++] = g_strdup (argv[i]);
          break;
        }
      value = i > 0 && !value && wants_next (w) != NULL;
    }
  return out;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = make_context ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) words = split_attached (argc, argv);
  /* GLib drops the words it parses from the vector: a copy of it */
  g_autofree char **parsed = g_memdup2 (words, (g_strv_length (words) + 1) * sizeof *words);
  int status;

  setlocale (LC_ALL, "");
  argc = (int) g_strv_length (words);
  if (!g_option_context_parse (ctx, &argc, &parsed, &error))
    return usage_error (ctx, error->message);
  if (opt.syslog)
    openlog ("reroute", LOG_PID, LOG_MAIL);
  status = run (ctx);
  g_strfreev (opt.tables);
  g_strfreev (opt.routes);
  g_strfreev (opt.recipients);
  g_strfreev (opt.args);
  g_free (opt.delimiter);
  g_free (opt.deliver);
  g_free (opt.fallback);
  g_free (opt.from);
  g_free (opt.mbox_format);
  g_free (opt.owner);
  g_free (opt.report);
  g_free (opt.run_lock);
  return status;
}
