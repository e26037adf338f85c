/* report.h - what a run did: counters, one line per problem, the summary.
 *
 * Everything a batch run has to say goes through here, so that -q, and later
 * the dry-run and JSON reports, are decided in one place. Problems are
 * printed as they happen ("reroute: PLACE: what"), and the failures are kept
 * so that cmd/ can choose the exit status. */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "rewrite.h"

G_BEGIN_DECLS

typedef struct _RrReport RrReport;

/* (transfer full) Summary lines go to @out, problems to @err. */
RrReport *rr_report_new (FILE *out, FILE *err, gboolean quiet);
void rr_report_free (RrReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrReport, rr_report_free)

void rr_report_scanned (RrReport *report, gsize bytes);
void rr_report_rewritten (RrReport *report, const char *place, const RrRewrite *rw);
void rr_report_unchanged (RrReport *report);
/* A message left as it was because it is bad data (counted as skipped). */
void rr_report_skipped (RrReport *report, const char *place, const GError *error);
/* A failure that stopped work on a message or a spool (counted as an error
 * and kept for the exit status). @place may be NULL when the error names it. */
void rr_report_error (RrReport *report, const char *place, const GError *error);
/* Something worth saying that changes nothing (a stale lock taken over, a
 * Content-Length ignored). Printed unless quiet. */
void rr_report_warning (RrReport *report, const char *text);

void rr_report_print_summary (RrReport *report);

guint rr_report_get_skipped (const RrReport *report);
/* The failures, in order (transfer none; elements are GError*). */
const GPtrArray *rr_report_get_errors (const RrReport *report);

G_END_DECLS
