/* rewrite.c - the rewrite action: recipients -> route table -> edits.
 *
 * The result is a list of segments rather than a new buffer: the spans of the
 * original message that stay as they are, the canonical addresses that replace
 * routed addr-specs, and the trace fields inserted at the top of the header.
 * A writer (stdout, a Maildir file, an mbox) sends them out as they are, so
 * every byte reroute does not mean to change is the original byte. */
#include "config.h"

#include "rewrite.h"

#include <string.h>

#include "address.h"

G_DEFINE_QUARK (rr-rewrite-error-quark, rr_rewrite_error)

typedef struct {
  const char *data;
  gsize len;
} Segment;

typedef struct {
  gsize start;
  gsize end;
  const char *text; /* owned by RrRewrite.strings */
} Edit;

struct _RrRewrite {
  GArray *recipients;   /* RrReroute */
  GPtrArray *canonical; /* char*, distinct, in order */
  GPtrArray *strings;   /* owned text that segments point into */
  GArray *segments;     /* Segment */
  gsize size;
  gboolean changes;
  gboolean unrouted;
};

static void
clear_reroute (gpointer p)
{
  RrReroute *r = p;

  g_free (r->address);
  g_free (r->canonical);
  if (r->chain)
    g_ptr_array_unref (r->chain);
}

void
rr_rewrite_free (RrRewrite *rw)
{
  if (rw == NULL)
    return;
  g_array_free (rw->recipients, TRUE);
  g_ptr_array_unref (rw->canonical);
  g_ptr_array_unref (rw->strings);
  g_array_free (rw->segments, TRUE);
  g_free (rw);
}

static RrRewrite *
rewrite_alloc (void)
{
  RrRewrite *rw = g_new0 (RrRewrite, 1);

  rw->recipients = g_array_new (FALSE, FALSE, sizeof (RrReroute));
  g_array_set_clear_func (rw->recipients, clear_reroute);
  rw->canonical = g_ptr_array_new ();
  rw->strings = g_ptr_array_new_with_free_func (g_free);
  rw->segments = g_array_new (FALSE, FALSE, sizeof (Segment));
  return rw;
}

/* Collects the recipients the SPEC names: --recipient, else the envelope
 * field, else To and Cc. Returns whether they came from an envelope field. */
static gboolean
collect (const RrMessage *msg, const RrRewriteOptions *opt, GArray *out)
{
  if (opt && opt->given)
    {
      for (const char *const *g = opt->given; *g; g++)
        {
          RrRecipient r = { g_strdup (*g), "--recipient", 0, 0, FALSE };
          g_array_append_val (out, r);
        }
      return FALSE;
    }
  if (rr_message_get_envelope (msg, out))
    return TRUE;
  rr_message_get_visible (msg, out);
  return FALSE;
}

/* A field that does not parse is an error only if it could hold a routed
 * address; otherwise whatever it holds is simply not routed. */
static gboolean
check_bad (const RrMessage *msg, const RrRouteTable *table, const RrRecipient *r,
           GError **error)
{
  if (!rr_route_table_may_match (table, rr_message_get_data (msg) + r->start,
                                 r->end - r->start))
    return TRUE;
  g_set_error (error, RR_REWRITE_ERROR, RR_REWRITE_ERROR_BAD_HEADER,
               "%s field at byte %" G_GSIZE_FORMAT " does not parse: %s",
               r->header, r->start, r->address);
  return FALSE;
}

static gboolean
same_address (const char *a, const char *b)
{
  g_autofree char *fa = rr_address_fold (a, NULL);
  g_autofree char *fb = rr_address_fold (b, NULL);

  return fa && fb ? strcmp (fa, fb) == 0 : g_ascii_strcasecmp (a, b) == 0;
}

static gboolean
contains_address (GPtrArray *list, const char *addr)
{
  for (guint i = 0; i < list->len; i++)
    if (same_address (list->pdata[i], addr))
      return TRUE;
  return FALSE;
}

/* Resolves one address. *to is set to the canonical address when the
 * address is to be rerouted (routed elsewhere, and not already traced). */
static int
resolve_one (const RrMessage *msg, const RrRouteTable *table, const char *address,
             RrReroute *out, const char **to, GError **error)
{
  int found;

  *out = (RrReroute){ g_strdup (address), NULL, NULL, NULL };
  *to = NULL;
  found = rr_route_table_resolve (table, address, &out->canonical, &out->chain, error);
  if (found > 0 && !same_address (out->canonical, address)
      && !rr_message_has_trace (msg, address))
    *to = out->canonical;
  return found;
}

typedef struct {
  RrRewrite *rw;
  const RrMessage *msg;
  const RrRouteTable *table;
  GArray *edits;      /* Edit */
  GPtrArray *traced;  /* original addresses rerouted, distinct */
} Plan;

/* Resolves every address of @list; @record keeps them as the message's
 * recipients, @edit replaces their addr-specs in place. */
static gboolean
plan_list (Plan *p, GArray *list, gboolean record, gboolean edit, GError **error)
{
  for (guint i = 0; i < list->len; i++)
    {
      const RrRecipient *r = &g_array_index (list, RrRecipient, i);
      RrReroute rr;
      const char *to;
      int found;

      if (r->bad)
        {
          if (!check_bad (p->msg, p->table, r, error))
            return FALSE;
          p->rw->unrouted |= record;
          continue;
        }
      found = resolve_one (p->msg, p->table, r->address, &rr, &to, error);
      if (found < 0)
        return clear_reroute (&rr), FALSE;
      if (to && !contains_address (p->traced, r->address))
        g_ptr_array_add (p->traced, g_strdup (r->address));
      if (to && edit)
        {
          Edit e = { r->start, r->end, to };
          g_ptr_array_add (p->rw->strings, g_strdup (to));
          e.text = g_ptr_array_index (p->rw->strings, p->rw->strings->len - 1);
          g_array_append_val (p->edits, e);
        }
      if (!record)
        {
          clear_reroute (&rr);
          continue;
        }
      rr.header = r->header;
      p->rw->unrouted |= found == 0;
      g_array_append_val (p->rw->recipients, rr);
      if (found > 0 && !contains_address (p->rw->canonical, rr.canonical))
        g_ptr_array_add (p->rw->canonical, rr.canonical);
    }
  return TRUE;
}

static void
add_segment (RrRewrite *rw, const char *data, gsize len)
{
  Segment s = { data, len };

  if (len == 0)
    return;
  g_array_append_val (rw->segments, s);
  rw->size += len;
}

static void
add_field (RrRewrite *rw, const char *name, const char *value, const char *eol)
{
  char *line = g_strconcat (name, ": ", value, eol, NULL);

  g_ptr_array_add (rw->strings, line);
  add_segment (rw, line, strlen (line));
}

static int
by_start (gconstpointer a, gconstpointer b)
{
  const Edit *x = a, *y = b;

  return x->start < y->start ? -1 : x->start > y->start;
}

/* Lays out the new message: prefix, new fields, then the original with the
 * edited spans replaced. */
static void
assemble (Plan *p, gboolean add_delivered_to)
{
  const char *data = rr_message_get_data (p->msg);
  const char *eol = rr_message_get_eol (p->msg);
  gsize pos = rr_message_get_header_start (p->msg);

  add_segment (p->rw, data, pos);
  if (add_delivered_to)
    {
      g_autofree char *joined = NULL;
      g_ptr_array_add (p->rw->canonical, NULL);
      joined = g_strjoinv (", ", (char **) p->rw->canonical->pdata);
      g_ptr_array_remove_index (p->rw->canonical, p->rw->canonical->len - 1);
      add_field (p->rw, "Delivered-To", joined, eol);
    }
  for (guint i = 0; i < p->traced->len; i++)
    add_field (p->rw, "X-Rerouted-From", p->traced->pdata[i], eol);
  g_array_sort (p->edits, by_start);
  for (guint i = 0; i < p->edits->len; i++)
    {
      const Edit *e = &g_array_index (p->edits, Edit, i);
      add_segment (p->rw, data + pos, e->start - pos);
      add_segment (p->rw, e->text, strlen (e->text));
      pos = e->end;
    }
  add_segment (p->rw, data + pos, rr_message_get_length (p->msg) - pos);
}

RrRewrite *
rr_rewrite_new (const RrMessage *msg, const RrRouteTable *table,
                const RrRewriteOptions *options, GError **error)
{
  g_autoptr (RrRewrite) rw = rewrite_alloc ();
  g_autoptr (GArray) list = rr_recipients_new ();
  g_autoptr (GArray) visible = NULL;
  g_autoptr (GArray) edits = g_array_new (FALSE, FALSE, sizeof (Edit));
  g_autoptr (GPtrArray) traced = g_ptr_array_new_with_free_func (g_free);
  Plan p = { rw, msg, table, edits, traced };
  gboolean envelope = collect (msg, options, list);
  gboolean visible_opt = options && options->visible;
  gboolean from_headers = envelope || !(options && options->given);

  if (!plan_list (&p, list, TRUE, envelope || (visible_opt && from_headers), error))
    return NULL;
  if (visible_opt && (envelope || !from_headers))
    {
      visible = rr_recipients_new ();
      rr_message_get_visible (msg, visible);
      if (!plan_list (&p, visible, FALSE, TRUE, error))
        return NULL;
    }
  rw->changes = traced->len > 0;
  if (rw->changes)
    assemble (&p, !envelope);
  else
    add_segment (rw, rr_message_get_data (msg), rr_message_get_length (msg));
  return g_steal_pointer (&rw);
}

const GArray *
rr_rewrite_get_recipients (const RrRewrite *rw)
{
  return rw->recipients;
}

gboolean
rr_rewrite_changes (const RrRewrite *rw)
{
  return rw->changes;
}

gboolean
rr_rewrite_has_unrouted (const RrRewrite *rw)
{
  return rw->unrouted;
}

const GPtrArray *
rr_rewrite_get_canonical (const RrRewrite *rw)
{
  return rw->canonical;
}

gsize
rr_rewrite_get_size (const RrRewrite *rw)
{
  return rw->size;
}

guint
rr_rewrite_get_n_segments (const RrRewrite *rw)
{
  return rw->segments->len;
}

void
rr_rewrite_get_segment (const RrRewrite *rw, guint i, const char **data, gsize *len)
{
  const Segment *s = &g_array_index (rw->segments, Segment, i);

  *data = s->data;
  *len = s->len;
}

void
rr_rewrite_append (const RrRewrite *rw, GString *out)
{
  for (guint i = 0; i < rw->segments->len; i++)
    {
      const Segment *s = &g_array_index (rw->segments, Segment, i);
      g_string_append_len (out, s->data, s->len);
    }
}
