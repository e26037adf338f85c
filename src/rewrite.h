/* rewrite.h - the rewrite action: resolve a message's recipients through the
 * route table and produce the rewritten message as a list of byte segments
 * (original bytes around the changed addr-specs, plus new trace fields).
 *
 * DIAGNOSTICS
 *   rr_rewrite_new() fails with RR_REWRITE_ERROR_BAD_HEADER when a recipient
 *   field that could hold a routed address does not parse, and with the route
 *   module's error when a chain cannot be resolved. The message must then be
 *   left as it is and reported with its place. */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "message.h"
#include "route.h"

G_BEGIN_DECLS

#define RR_REWRITE_ERROR (rr_rewrite_error_quark ())
GQuark rr_rewrite_error_quark (void);

typedef enum {
  RR_REWRITE_ERROR_BAD_HEADER,
} RrRewriteError;

typedef struct {
  gboolean visible;        /* also rewrite To and Cc */
  const char *const *given; /* NULL-ended --recipient addresses, or NULL */
} RrRewriteOptions;

/* One recipient and what the table made of it. */
typedef struct {
  char *address;       /* as found */
  const char *header;  /* where it was found (static) */
  char *canonical;     /* NULL when not routed */
  GPtrArray *chain;    /* RrRoute*, (transfer none) elements; NULL if not routed */
} RrReroute;

typedef struct _RrRewrite RrRewrite;

/* (transfer full) */
RrRewrite *rr_rewrite_new (const RrMessage *msg, const RrRouteTable *table,
                           const RrRewriteOptions *options, GError **error);
void rr_rewrite_free (RrRewrite *rw);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrRewrite, rr_rewrite_free)

/* The recipients, each with its resolution (transfer none). */
const GArray *rr_rewrite_get_recipients (const RrRewrite *rw);
/* Whether any recipient is routed to an address other than its own. */
gboolean rr_rewrite_changes (const RrRewrite *rw);
/* Whether some recipient is not routed (refile then keeps the source). */
gboolean rr_rewrite_has_unrouted (const RrRewrite *rw);
/* Distinct canonical addresses, in order of first appearance (transfer none). */
const GPtrArray *rr_rewrite_get_canonical (const RrRewrite *rw);

/* Size in bytes of the rewritten message. */
gsize rr_rewrite_get_size (const RrRewrite *rw);
/* The rewritten message as segments: pointers into the message's bytes or into
 * strings owned by @rw (transfer none). */
guint rr_rewrite_get_n_segments (const RrRewrite *rw);
void rr_rewrite_get_segment (const RrRewrite *rw, guint i, const char **data,
                             gsize *len);
/* Appends the rewritten message to @out. */
void rr_rewrite_append (const RrRewrite *rw, GString *out);

G_END_DECLS
