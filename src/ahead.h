/* ahead.h - work ahead in threads, finish in order.
 *
 * A spool's messages are parsed and resolved independently of each other,
 * but acted on (rewritten, refiled, reported) one at a time, in the order of
 * the spool. RrAhead runs the first part for the next few items in a pool of
 * worker threads while the caller's thread does the second part, in order.
 * At most about @window items are pushed and not yet done (they go to the
 * workers in batches), so memory stays bounded.
 * With one job there are no threads: push() works and finishes the item at
 * once, in the caller's thread. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _RrAhead RrAhead;

/* Called in a worker thread (or the caller's, with one job). */
typedef void (*RrAheadWork) (gpointer item, gpointer user_data);
/* Called in the caller's thread, once per item, in push order. */
typedef void (*RrAheadDone) (gpointer item, gpointer user_data);

/* @jobs worker threads (0: one per processor); @window items ahead at most. */
RrAhead *rr_ahead_new (guint jobs, guint window, RrAheadWork work, RrAheadDone done,
                       gpointer user_data);

/* Queues @item; may first call done() for earlier items, to keep the window. */
void rr_ahead_push (RrAhead *ahead, gpointer item);

/* Calls done() for every item still pending, in order. */
void rr_ahead_drain (RrAhead *ahead);

/* Drains, then stops the workers. */
void rr_ahead_free (RrAhead *ahead);

/* The number of jobs @jobs stands for (0: one per processor). */
guint rr_ahead_jobs (guint jobs);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrAhead, rr_ahead_free)

G_END_DECLS
