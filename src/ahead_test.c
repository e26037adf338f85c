/* Unit tests for ahead.c: every item worked once and finished once, in
 * order, in the caller's thread, with a bounded number in flight. */
#include <criterion/criterion.h>

#include "ahead.h"

typedef struct {
  guint index;
  gint worked;  /* times */
  GThread *worker;
} Item;

typedef struct {
  GThread *caller;
  guint pushed, finished;
  guint most_in_flight;
  gboolean worked_elsewhere;
  GRand *rand;
} Run;

static void
work (gpointer p, gpointer data G_GNUC_UNUSED)
{
  Item *it = p;

  g_usleep (it->index % 7 == 0 ? 200 : 0);  /* finish out of order */
  g_atomic_int_inc (&it->worked);
  it->worker = g_thread_self ();
}

static void
done (gpointer p, gpointer data)
{
  Item *it = p;
  Run *r = data;

  cr_assert_eq (g_atomic_int_get (&it->worked), 1, "item %u worked %d times before done",
                it->index, g_atomic_int_get (&it->worked));
  cr_assert_eq (it->index, r->finished, "item %u finished in place %u", it->index, r->finished);
  cr_assert_eq (g_thread_self (), r->caller, "done() ran outside the caller's thread");
  r->worked_elsewhere |= it->worker != r->caller;
  r->finished++;
  g_free (it);
}

static Run
run (guint jobs, guint window, guint n)
{
  Run r = { g_thread_self (), 0, 0, 0, FALSE, NULL };
  RrAhead *a = rr_ahead_new (jobs, window, work, done, &r);

  for (guint i = 0; i < n; i++)
    {
      Item *it = g_new0 (Item, 1);
      it->index = i;
      rr_ahead_push (a, it);
      r.pushed++;
      r.most_in_flight = MAX (r.most_in_flight, r.pushed - r.finished);
    }
  rr_ahead_drain (a);
  cr_assert_eq (r.finished, n, "drain left %u of %u", n - r.finished, n);
  rr_ahead_free (a);
  return r;
}

Test (ahead, threads_finish_in_order_and_bounded)
{
  Run r = run (3, 32, 2000);

  cr_assert (r.worked_elsewhere, "no item was worked in a worker thread");
  /* The window (two batches of 16) plus the batch being gathered. */
  cr_assert_leq (r.most_in_flight, 48, "%u items in flight", r.most_in_flight);
}

Test (ahead, one_job_works_at_once_in_the_caller)
{
  Run r = run (1, 32, 100);

  cr_assert_not (r.worked_elsewhere, "one job must not start threads");
  cr_assert_eq (r.most_in_flight, 0, "one job must finish each item before push returns");
}

Test (ahead, drain_then_push_again)
{
  Run r = { g_thread_self (), 0, 0, 0, FALSE, NULL };
  RrAhead *a = rr_ahead_new (2, 16, work, done, &r);

  for (guint round = 0; round < 3; round++)
    {
      for (guint i = 0; i < 5; i++)
        {
          Item *it = g_new0 (Item, 1);
          it->index = r.pushed++;
          rr_ahead_push (a, it);
        }
      rr_ahead_drain (a);
      cr_assert_eq (r.finished, r.pushed, "round %u: %u of %u finished", round, r.finished,
                    r.pushed);
    }
  rr_ahead_free (a);
}

Test (ahead, zero_jobs_means_one_per_processor)
{
  cr_assert_eq (rr_ahead_jobs (0), MAX (1, g_get_num_processors ()));
  cr_assert_eq (rr_ahead_jobs (5), 5);
}
