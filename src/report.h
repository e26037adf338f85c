/* report.h - what a run did: one entry per routed message, problems as they
 * happen, and the closing summary, as text or JSON Lines.
 *
 * Everything a batch run has to say goes through here, so that -q, -v, the
 * dry-run report and --report json are decided in one place. Entries of an
 * mbox or of a batch of deliveries are held until the caller knows the work
 * is durable (rr_report_hold / rr_report_release): a report never claims
 * what did not happen. Failures are kept so that cmd/ can choose the exit
 * status. */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "rewrite.h"

G_BEGIN_DECLS

typedef enum {
  RR_REPORT_TEXT,
  RR_REPORT_JSON,
} RrReportFormat;

typedef enum {
  RR_ACTION_REWRITE,     /* rewritten in place */
  RR_ACTION_REFILE,      /* delivered, and removed from the source */
  RR_ACTION_REFILE_KEEP, /* delivered for its routed recipients, kept for the others */
  RR_ACTION_COPY,        /* delivered, and kept in the source (--copy) */
} RrAction;

typedef struct {
  const char *place;
  const char *message_id;            /* may be NULL */
  const RrRewrite *rw;
  RrAction action;
  const char *const *destinations;   /* NULL-ended */
  gsize bytes;
} RrReportEntry;

typedef struct _RrReport RrReport;

/* (transfer full) Entries and the summary go to @out, problems to @err. */
RrReport *rr_report_new (FILE *out, FILE *err, gboolean quiet);
void rr_report_free (RrReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrReport, rr_report_free)

/* @lines: print one line per routed message (dry-run, -v); JSON prints them
 * always. @dry_run words the text as what would be done. */
void rr_report_configure (RrReport *report, RrReportFormat format, gboolean lines,
                          gboolean dry_run);

/* Also send problems and the summary to syslog (facility mail). */
void rr_report_use_syslog (RrReport *report);
/* Show progress on @tty (a terminal) once the run is longer than a second;
 * @total, if not 0, is the bytes expected, for a percentage. */
void rr_report_show_progress (RrReport *report, FILE *tty, guint64 total);

void rr_report_scanned (RrReport *report, gsize bytes);
void rr_report_action (RrReport *report, const RrReportEntry *entry);
void rr_report_unchanged (RrReport *report);
/* From now on, entries wait for rr_report_release(); @done says whether
 * their work happened (printed and counted) or not (dropped). */
void rr_report_hold (RrReport *report);
void rr_report_release (RrReport *report, gboolean done);

/* A message left as it was because it is bad data (counted as skipped). */
void rr_report_skipped (RrReport *report, const char *place, const GError *error);
/* A failure that stopped work on a message or a spool (counted as an error
 * and kept for the exit status). @place may be NULL when the error names it. */
void rr_report_error (RrReport *report, const char *place, const GError *error);
/* Something worth saying that changes nothing. Printed unless quiet. */
void rr_report_warning (RrReport *report, const char *text);

void rr_report_print_summary (RrReport *report);

guint rr_report_get_skipped (const RrReport *report);
/* The failures, in order (transfer none; elements are GError*). */
const GPtrArray *rr_report_get_errors (const RrReport *report);

G_END_DECLS
