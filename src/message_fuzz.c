/* message_fuzz.c - fuzzing harness for one message: header splitting,
 * recipient extraction (GMime's address parser and our span scanner), the
 * rewrite, and what a dry run reports about it.
 *
 * Input: the message's bytes, as a Maildir file or stdin gives them (a From_
 * line first is allowed, as in an mbox slice). Each input is rewritten three
 * ways, through a fixed table like the SPEC's example: envelope recipients
 * only, with --visible, and with --recipient addresses and --visible.
 *
 * Invariants checked (SPEC.md, "Actions"):
 *   - a message that parses is either rewritten or refused with
 *     RR_REWRITE_ERROR_BAD_HEADER (the table has no chain to fail);
 *   - the segments add up to rr_rewrite_get_size();
 *   - nothing to change: the output is the input, byte for byte;
 *   - a change leaves the bytes before the header and the whole body as
 *     they were, and the output is a message whose header ends where the
 *     original body starts;
 *   - idempotence: rewriting the output again parses, succeeds and changes
 *     nothing ("a second run over the same spool changes nothing");
 *   - the dry-run report (text and JSON) can be made, and every mailbox path
 *     a refile would use stays inside its template's directory. */
#include "config.h"

#include <glib.h>
#include <gmime/gmime.h>
#include <string.h>

#include "fuzz.h"
#include "message.h"
#include "refile.h"
#include "report.h"
#include "rewrite.h"
#include "route.h"

static const char table_text[] =
  "# The SPEC's example, and a few rules of each other kind.\n"
  "adatum.com             inbound\n"
  "cpandl.net             adatum.com\n"
  "cpandl.org             adatum.com\n"
  "internal.adatum.com    adatum.com\n"
  ".adatum.com            adatum.com        # any subdomain of adatum.com\n"
  "sales@cpandl.net       team@adatum.com   # one address (alias table)\n"
  "@fabrikam.example      cpandl.org\n"
  "b\xC3\xBC" "cher.example    adatum.com\n"
  "old@contoso.example    inbound\n";

static const char *const given[] = { "administrator@cpandl.net", "sales@cpandl.net",
                                     "someone@elsewhere.example", NULL };

static const char *const templates[] = { "/var/mail/%d/%u/", "/srv/mbox/%a", "/home/%u/Mail/in" };

static RrRouteTable *table;
static FILE *devnull;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_autoptr (GError) error = NULL;

  (void) argc;
  (void) argv;
  g_mime_init ();
  table = rr_route_table_new ();
  if (!rr_route_table_load_data (table, "fuzz.table", table_text, sizeof table_text - 1, &error)
      || !rr_route_table_finish (table, &error))
    {
      fprintf (stderr, "message_fuzz: %s\n", error->message);
      abort ();
    }
  devnull = fopen ("/dev/null", "w");
  FUZZ_CHECK (devnull != NULL);
  return 0;
}

/* A mailbox path must not leave the template's directory: below the root,
 * every component is a plain name. */
static void
check_destination (const char *template, const char *path)
{
  g_autofree char *root = rr_deliver_template_root (template);
  g_auto (GStrv) parts = NULL;

  FUZZ_CHECK (g_str_has_prefix (path, root) && path[strlen (root)] == '/');
  parts = g_strsplit (path + strlen (root) + 1, "/", -1);
  for (guint i = 0; parts[i]; i++)
    {
      if (parts[i][0] == '\0' && parts[i + 1] == NULL)
        continue; /* the Maildir template's trailing slash */
      FUZZ_CHECK (parts[i][0] != '\0' && parts[i][0] != '.');
      for (const char *c = parts[i]; *c; c++)
        FUZZ_CHECK ((unsigned char) *c >= 0x20 && *c != 0x7f);
    }
}

/* What a dry run does with a rewritten message: its report entry, in both
 * formats, and the refile destinations it would name. */
static void
dry_run (const RrMessage *msg, const RrRewrite *rw)
{
  g_autofree char *id = rr_message_get_message_id (msg);
  const GPtrArray *canonical = rr_rewrite_get_canonical (rw);

  for (guint t = 0; t < G_N_ELEMENTS (templates); t++)
    {
      RrRefileOptions ro = { templates[t], NULL, { 0 } };
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) dests = rr_refile_destinations (&ro, canonical, &error);

      if (dests == NULL)
        {
          FUZZ_CHECK (error && error->domain == RR_DELIVER_ERROR
                      && error->code == RR_DELIVER_ERROR_UNSAFE);
          continue;
        }
      FUZZ_CHECK (g_strv_length (dests) == canonical->len);
      for (guint i = 0; dests[i]; i++)
        check_destination (templates[t], dests[i]);
      for (int format = RR_REPORT_TEXT; format <= RR_REPORT_JSON; format++)
        {
          g_autoptr (RrReport) report = rr_report_new (devnull, devnull, FALSE);
          RrReportEntry e = { "fuzz", id, rw, t ? RR_ACTION_REFILE : RR_ACTION_REWRITE,
                              (const char *const *) dests, rr_rewrite_get_size (rw) };
          rr_report_configure (report, format, TRUE, TRUE);
          rr_report_scanned (report, rr_message_get_length (msg));
          rr_report_action (report, &e);
          rr_report_print_summary (report);
        }
    }
}

/* (transfer full) The rewritten message in a buffer of exactly its size. */
static char *
flatten (const RrRewrite *rw, gsize *len)
{
  gsize n = rr_rewrite_get_n_segments (rw), total = 0;
  char *out = g_malloc (MAX (rr_rewrite_get_size (rw), 1));

  for (guint i = 0; i < n; i++)
    {
      const char *d;
      gsize l;
      rr_rewrite_get_segment (rw, i, &d, &l);
      FUZZ_CHECK (total + l <= rr_rewrite_get_size (rw));
      memcpy (out + total, d, l);
      total += l;
    }
  FUZZ_CHECK (total == rr_rewrite_get_size (rw));
  *len = total;
  return out;
}

static void
rewrite_once (const RrMessage *msg, const RrRewriteOptions *opt)
{
  const char *in = rr_message_get_data (msg);
  gsize in_len = rr_message_get_length (msg);
  gsize header_start = rr_message_get_header_start (msg);
  gsize body = rr_message_get_header_end (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (RrRewrite) rw = rr_rewrite_new (msg, table, opt, &error);
  g_autoptr (RrMessage) msg2 = NULL;
  g_autoptr (RrRewrite) rw2 = NULL;
  g_autofree char *out = NULL;
  gsize out_len;

  if (rw == NULL)
    {
      FUZZ_CHECK (error && error->domain == RR_REWRITE_ERROR
                  && error->code == RR_REWRITE_ERROR_BAD_HEADER);
      return;
    }
  out = flatten (rw, &out_len);
  (void) rr_rewrite_get_recipients (rw);
  (void) rr_rewrite_has_unrouted (rw);
  dry_run (msg, rw);
  if (!rr_rewrite_changes (rw))
    {
      FUZZ_CHECK (out_len == in_len && memcmp (out, in, in_len) == 0);
      return;
    }

  FUZZ_CHECK (out_len >= header_start + (in_len - body));
  FUZZ_CHECK (memcmp (out, in, header_start) == 0);
  FUZZ_CHECK (memcmp (out + out_len - (in_len - body), in + body, in_len - body) == 0);

  msg2 = rr_message_new (out, out_len, &error);
  FUZZ_CHECK (msg2 != NULL);
  FUZZ_CHECK (rr_message_get_header_start (msg2) == header_start);
  FUZZ_CHECK (rr_message_get_header_end (msg2) == out_len - (in_len - body));
  rw2 = rr_rewrite_new (msg2, table, opt, &error);
  if (rw2 == NULL)
    fprintf (stderr, "second rewrite failed: %s\n", error->message);
  FUZZ_CHECK (rw2 != NULL);
  FUZZ_CHECK (!rr_rewrite_changes (rw2));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const RrRewriteOptions options[] = {
    { FALSE, NULL },
    { TRUE, NULL },
    { TRUE, given },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (RrMessage) msg = rr_message_new ((const char *) data, size, &error);

  if (msg == NULL)
    {
      FUZZ_CHECK (error && error->domain == RR_MESSAGE_ERROR);
      return 0;
    }
  FUZZ_CHECK (rr_message_get_header_start (msg) <= rr_message_get_header_end (msg)
              && rr_message_get_header_end (msg) <= size);
  (void) rr_message_get_date (msg);
  for (guint i = 0; i < G_N_ELEMENTS (options); i++)
    rewrite_once (msg, &options[i]);
  return 0;
}
