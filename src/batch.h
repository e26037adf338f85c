/* batch.h - a run over one spool: detect its kind, read every message,
 * rewrite the routed ones in place, tell the report.
 *
 * DIAGNOSTICS
 *   Nothing is returned: every outcome goes to the RrReport. A path that is
 *   not a spool is reported with RR_BATCH_ERROR_NOT_SPOOL; a busy mbox lock
 *   with RR_LOCK_ERROR_BUSY (the mbox is then untouched); I/O failures with
 *   G_IO_ERROR (the message or mbox being written is then untouched). */
#pragma once

#include <glib.h>

#include "refile.h"
#include "report.h"
#include "rewrite.h"
#include "route.h"

G_BEGIN_DECLS

#define RR_BATCH_ERROR (rr_batch_error_quark ())
GQuark rr_batch_error_quark (void);

typedef enum {
  RR_BATCH_ERROR_NOT_SPOOL,
} RrBatchError;

typedef struct {
  const RrRouteTable *table;
  RrRewriteOptions rewrite;
  gboolean recurse;     /* walk Maildir++ subfolders */
  guint lock_timeout;   /* seconds to wait for a busy mbox lock */
  guint stale_lock;     /* seconds after which a dotlock is stale */
  const RrRefileOptions *refile; /* --deliver: refile instead of rewriting */
  gboolean copy;        /* --copy: refiled messages stay in the source */
  gboolean dry_run;     /* -n: read and report, write nothing, lock nothing */
  guint jobs;           /* threads reading a Maildir ahead; 0: one per processor */
} RrBatchOptions;

void rr_batch_run (const RrBatchOptions *options, const char *spool, RrReport *report);

G_END_DECLS
