/* report.c - counters, problem lines and the end-of-run summary. */
#include "config.h"

#include "report.h"

struct _RrReport {
  FILE *out;
  FILE *err;
  gboolean quiet;
  gint64 started;
  guint scanned;
  guint rewritten;
  guint unchanged;
  guint skipped;
  guint64 bytes;
  GPtrArray *errors; /* GError* */
};

RrReport *
rr_report_new (FILE *out, FILE *err, gboolean quiet)
{
  RrReport *r = g_new0 (RrReport, 1);

  r->out = out;
  r->err = err;
  r->quiet = quiet;
  r->started = g_get_monotonic_time ();
  r->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  return r;
}

void
rr_report_free (RrReport *r)
{
  if (r == NULL)
    return;
  g_ptr_array_unref (r->errors);
  g_free (r);
}

void
rr_report_scanned (RrReport *r, gsize bytes)
{
  r->scanned++;
  r->bytes += bytes;
}

void
rr_report_rewritten (RrReport *r, const char *place G_GNUC_UNUSED,
                     const RrRewrite *rw G_GNUC_UNUSED)
{
  r->rewritten++;
}

void
rr_report_unchanged (RrReport *r)
{
  r->unchanged++;
}

static void
say (RrReport *r, const char *place, const char *text)
{
  if (place)
    fprintf (r->err, "reroute: %s: %s\n", place, text);
  else
    fprintf (r->err, "reroute: %s\n", text);
  fflush (r->err);
}

void
rr_report_skipped (RrReport *r, const char *place, const GError *error)
{
  r->skipped++;
  say (r, place, error->message);
}

void
rr_report_error (RrReport *r, const char *place, const GError *error)
{
  g_ptr_array_add (r->errors, g_error_copy (error));
  say (r, place, error->message);
}

void
rr_report_warning (RrReport *r, const char *text)
{
  if (!r->quiet)
    say (r, NULL, text);
}

void
rr_report_print_summary (RrReport *r)
{
  double secs = (g_get_monotonic_time () - r->started) / 1e6;

  if (r->quiet)
    return;
  fprintf (r->out, "reroute: %u scanned, %u rewritten, %u unchanged, %u skipped, %u errors, %.2f s\n",
           r->scanned, r->rewritten, r->unchanged, r->skipped, r->errors->len, secs);
  fflush (r->out);
}

guint
rr_report_get_skipped (const RrReport *r)
{
  return r->skipped;
}

const GPtrArray *
rr_report_get_errors (const RrReport *r)
{
  return r->errors;
}
