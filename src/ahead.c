/* ahead.c - a bounded, ordered look-ahead over a GThreadPool.
 *
 * The items pushed and not yet done sit in a ring; workers mark their slot
 * done under one mutex, and the caller's thread waits only for the oldest
 * slot. Nothing the caller does in done() runs in a worker, so the code that
 * writes mail never has to be thread-safe. */
#include "config.h"

#include "ahead.h"

/* Items go to the workers in batches, so that a thread wakes up once per
 * batch rather than once per message (measured: per-message hand-offs spent
 * a fifth of a Maildir dry run switching threads). */
#define BATCH 16

/* handed and done are atomics as well as being guarded by the pool's queue
 * and our mutex: GLib's locks are futexes that ThreadSanitizer cannot see,
 * and the atomics make the hand-offs visible to it. */
typedef struct {
  gpointer items[BATCH];
  guint n;
  gint handed;
  gint done;
} Slot;

struct _RrAhead {
  RrAheadWork work;
  RrAheadDone done;
  gpointer user_data;
  GThreadPool *pool;  /* NULL with one job */
  Slot *ring;         /* batches handed to the pool, oldest at head */
  guint window, head, count;
  Slot filling;       /* the batch being gathered */
  GMutex lock;
  GCond finished;
};

guint
rr_ahead_jobs (guint jobs)
{
  return jobs ? jobs : MAX (1, g_get_num_processors ());
}

static void
run_slot (gpointer data, gpointer user_data)
{
  Slot *slot = data;
  RrAhead *a = user_data;

  g_assert (g_atomic_int_get (&slot->handed));
  for (guint i = 0; i < slot->n; i++)
    a->work (slot->items[i], a->user_data);
  g_mutex_lock (&a->lock);
  g_atomic_int_set (&slot->done, TRUE);
  g_cond_broadcast (&a->finished);
  g_mutex_unlock (&a->lock);
}

RrAhead *
rr_ahead_new (guint jobs, guint window, RrAheadWork work, RrAheadDone done, gpointer user_data)
{
  RrAhead *a = g_new0 (RrAhead, 1);

  a->work = work;
  a->done = done;
  a->user_data = user_data;
  jobs = rr_ahead_jobs (jobs);
  a->window = MAX ((window + BATCH - 1) / BATCH, 1);
  a->ring = g_new0 (Slot, a->window);
  g_mutex_init (&a->lock);
  g_cond_init (&a->finished);
  /* Exclusive threads: created once, never shared with GLib's other pools. */
  if (jobs > 1)
    a->pool = g_thread_pool_new (run_slot, a, jobs, TRUE, NULL);
  return a;
}

static void
finish_oldest (RrAhead *a)
{
  Slot *slot = &a->ring[a->head];

  g_mutex_lock (&a->lock);
  while (!g_atomic_int_get (&slot->done))
    g_cond_wait (&a->finished, &a->lock);
  g_mutex_unlock (&a->lock);
  a->head = (a->head + 1) % a->window;
  a->count--;
  for (guint i = 0; i < slot->n; i++)
    a->done (slot->items[i], a->user_data);
}

static void
hand_over (RrAhead *a)
{
  Slot *slot;

  if (a->filling.n == 0)
    return;
  if (a->count == a->window)
    finish_oldest (a);
  slot = &a->ring[(a->head + a->count) % a->window];
  *slot = a->filling;
  slot->done = FALSE;
  g_atomic_int_set (&slot->handed, TRUE);
  a->filling.n = 0;
  a->count++;
  g_thread_pool_push (a->pool, slot, NULL);
}

void
rr_ahead_push (RrAhead *a, gpointer item)
{
  if (a->pool == NULL)
    {
      a->work (item, a->user_data);
      a->done (item, a->user_data);
      return;
    }
  a->filling.items[a->filling.n++] = item;
  if (a->filling.n == BATCH)
    hand_over (a);
}

void
rr_ahead_drain (RrAhead *a)
{
  if (a->pool)
    hand_over (a);
  while (a->count > 0)
    finish_oldest (a);
}

void
rr_ahead_free (RrAhead *a)
{
  if (a == NULL)
    return;
  rr_ahead_drain (a);
  if (a->pool)
    g_thread_pool_free (a->pool, FALSE, TRUE);
  g_mutex_clear (&a->lock);
  g_cond_clear (&a->finished);
  g_free (a->ring);
  g_free (a);
}
