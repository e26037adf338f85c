/* report.c - entries, problem lines and the end-of-run summary.
 *
 * JSON goes through json-glib so that any header bytes (control characters,
 * invalid UTF-8, made valid first) come out as valid JSON. */
#include "config.h"

#include "report.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <syslog.h>
#include <unistd.h>

#include "route.h"

typedef struct {
  char *text;
  char *json;
  RrAction action;
  GPtrArray *routes; /* char*, distinct rule names */
  gsize bytes;
} Entry;

typedef struct {
  guint messages;
  guint64 bytes;
} RouteCount;

/* What the summary counts of the reported messages. */
typedef struct {
  guint rewritten;
  guint refiled;
  guint unchanged;
  GHashTable *routes;  /* rule name -> RouteCount */
  GPtrArray *order;    /* rule names, first seen first */
} Tally;

struct _RrReport {
  FILE *out;
  FILE *err;
  gboolean quiet;
  gboolean lines;
  gboolean dry_run;
  RrReportFormat format;
  gint64 started;
  guint scanned;
  guint skipped;
  GPtrArray *errors;   /* GError* */
  Tally tally;
  Tally *held;         /* entries held back, or NULL when not holding */
  FILE *held_lines;    /* their lines, in a temporary file (or NULL) */
  GString *held_text;  /* or here, when no temporary file could be made */
  GHashTable *rule_names; /* const RrRoute * -> its name for the summary */
  int width;           /* of the terminal out is, or 0 */
  gboolean syslog;
  FILE *tty;           /* progress goes here, or NULL */
  guint64 total;       /* bytes expected, or 0 */
  guint64 bytes;       /* bytes scanned */
  gint64 shown;        /* when progress was last drawn */
};

static void
entry_free (gpointer p)
{
  Entry *e = p;

  g_free (e->text);
  g_free (e->json);
  g_ptr_array_unref (e->routes);
  g_free (e);
}

static void
tally_init (Tally *t)
{
  t->routes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  t->order = g_ptr_array_new_with_free_func (g_free);
}

static void
tally_clear (Tally *t)
{
  g_clear_pointer (&t->routes, g_hash_table_unref);
  g_clear_pointer (&t->order, g_ptr_array_unref);
}

static void
tally_route (Tally *t, const char *name, guint messages, guint64 bytes)
{
  RouteCount *c = g_hash_table_lookup (t->routes, name);

  if (c == NULL)
    {
      char *copy = g_strdup (name);
      c = g_new0 (RouteCount, 1);
      g_ptr_array_add (t->order, copy);
      g_hash_table_insert (t->routes, copy, c);
    }
  c->messages += messages;
  c->bytes += bytes;
}

static void
tally_entry (Tally *t, const Entry *e)
{
  if (e->action == RR_ACTION_REWRITE)
    t->rewritten++;
  else if (e->action == RR_ACTION_REFILE || e->action == RR_ACTION_COPY)
    t->refiled++;
  else
    t->unchanged++;  /* delivered, but it stays where it was */
  for (guint i = 0; i < e->routes->len; i++)
    tally_route (t, e->routes->pdata[i], 1, e->bytes);
}

static void
tally_merge (Tally *into, const Tally *from)
{
  into->rewritten += from->rewritten;
  into->refiled += from->refiled;
  into->unchanged += from->unchanged;
  for (guint i = 0; i < from->order->len; i++)
    {
      const RouteCount *c = g_hash_table_lookup (from->routes, from->order->pdata[i]);
      tally_route (into, from->order->pdata[i], c->messages, c->bytes);
    }
}

static int
terminal_width (FILE *f)
{
  struct winsize ws;

  if (!isatty (fileno (f)))
    return 0;
  return ioctl (fileno (f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;
}

RrReport *
rr_report_new (FILE *out, FILE *err, gboolean quiet)
{
  RrReport *r = g_new0 (RrReport, 1);

  r->out = out;
  r->err = err;
  r->quiet = quiet;
  r->started = g_get_monotonic_time ();
  r->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  tally_init (&r->tally);
  r->rule_names = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  r->width = terminal_width (out);
  return r;
}

void
rr_report_free (RrReport *r)
{
  if (r == NULL)
    return;
  g_ptr_array_unref (r->errors);
  rr_report_release (r, FALSE);
  tally_clear (&r->tally);
  g_hash_table_unref (r->rule_names);
  if (r->syslog)
    closelog ();
  g_free (r);
}

void
rr_report_configure (RrReport *r, RrReportFormat format, gboolean lines, gboolean dry_run)
{
  r->format = format;
  r->lines = lines;
  r->dry_run = dry_run;
}

void
rr_report_use_syslog (RrReport *r)
{
  r->syslog = TRUE;
  openlog ("reroute", LOG_PID, LOG_MAIL);
}

void
rr_report_show_progress (RrReport *r, FILE *tty, guint64 total)
{
  r->tty = tty;
  r->total = total;
}

/* Redrawn at most five times a second, and only after the first second, so a
 * short run prints nothing. */
static void
progress (RrReport *r, gboolean last)
{
  gint64 now = g_get_monotonic_time ();
  double secs = (now - r->started) / 1e6;

  if (r->tty == NULL || secs < 1.0 || (!last && now - r->shown < 200000))
    return;
  if (last && r->shown == 0)
    return;
  r->shown = now;
  fprintf (r->tty, "\rreroute: %u messages, %.1f MB, %.0f messages/s", r->scanned,
           r->bytes / 1e6, r->scanned / secs);
  if (r->total > 0)
    fprintf (r->tty, ", %.0f%%", MIN (100.0, 100.0 * r->bytes / r->total));
  fputs (last ? "\n" : "\033[K", r->tty);
  fflush (r->tty);
}

void
rr_report_scanned (RrReport *r, gsize bytes)
{
  r->scanned++;
  r->bytes += bytes;
  if (r->tty && (r->scanned & 63) == 0)
    progress (r, FALSE);
}

void
rr_report_unchanged (RrReport *r)
{
  r->tally.unchanged++;
}

static const char *
action_name (RrAction a)
{
  static const char *const names[] = { "rewrite", "refile", "refile+keep", "copy" };

  return names[a];
}

static char *
valid (const char *s)
{
  return g_utf8_make_valid (s ? s : "", -1);
}

/* The name of the rule that first matched a recipient, by which the
 * summary groups; made once per rule. (transfer none) */
static const char *
rule_name (RrReport *r, const RrReroute *rr)
{
  const RrRoute *route = rr->chain && rr->chain->len ? rr->chain->pdata[0] : NULL;
  char *name;

  if (route == NULL)
    return NULL;
  if ((name = g_hash_table_lookup (r->rule_names, route)) == NULL)
    {
      name = g_strdup_printf ("%s:%u %s -> %s", route->source, route->line, route->key,
                              route->target);
      g_hash_table_insert (r->rule_names, (gpointer) route, name);
    }
  return name;
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  g_autofree char *v = value ? valid (value) : NULL;

  json_builder_set_member_name (b, name);
  if (v)
    json_builder_add_string_value (b, v);
  else
    json_builder_add_null_value (b);
}

static void
add_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

/* json-glib 1.6 escapes control characters below 0x1f but writes 0x1f
 * itself raw, which no JSON parser accepts. A raw control byte can only be
 * inside a string, so escaping it afterwards is safe. */
static char *
escape_unit_separator (char *json)
{
  GString *out;

  if (strchr (json, 0x1f) == NULL)
    return json;
  out = g_string_new (NULL);
  for (const char *p = json; *p; p++)
    if (*p == 0x1f)
      g_string_append (out, "\\u001f");
    else
      g_string_append_c (out, *p);
  g_free (json);
  return g_string_free (out, FALSE);
}

static char *
to_line (JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);

  json_generator_set_root (gen, root);
  return escape_unit_separator (json_generator_to_data (gen, NULL));
}

static char *
entry_json (const RrReportEntry *e, gboolean dry_run)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const GArray *recips = rr_rewrite_get_recipients (e->rw);

  json_builder_begin_object (b);
  add_string (b, "place", e->place);
  add_string (b, "message_id", e->message_id);
  json_builder_set_member_name (b, "recipients");
  json_builder_begin_array (b);
  for (guint i = 0; i < recips->len; i++)
    {
      const RrReroute *rr = &g_array_index (recips, RrReroute, i);
      json_builder_begin_object (b);
      add_string (b, "address", rr->address);
      add_string (b, "header", rr->header);
      add_string (b, "canonical", rr->canonical);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  add_string (b, "action", action_name (e->action));
  json_builder_set_member_name (b, "destination");
  json_builder_begin_array (b);
  for (const char *const *d = e->destinations; d && *d; d++)
    {
      g_autofree char *v = valid (*d);
      json_builder_add_string_value (b, v);
    }
  json_builder_end_array (b);
  add_int (b, "bytes", e->bytes);
  json_builder_set_member_name (b, "dry_run");
  json_builder_add_boolean_value (b, dry_run);
  json_builder_end_object (b);
  return to_line (b);
}

static char *
recipients_text (const RrRewrite *rw)
{
  const GArray *recips = rr_rewrite_get_recipients (rw);
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < recips->len; i++)
    {
      const RrReroute *rr = &g_array_index (recips, RrReroute, i);
      g_string_append_printf (s, "%s%s -> %s", i ? ", " : "", rr->address,
                              rr->canonical ? rr->canonical : "(not routed)");
    }
  return g_string_free (s, FALSE);
}


/* @value padded or cut (with "...") to @width columns; 0: as it is. */
static void
column (GString *line, const char *value, int width, gboolean last)
{
  g_autofree char *v = valid (value);
  glong n;

  if (width <= 0)
    {
      g_string_append (line, v);
      g_string_append (line, last ? "" : "\t");
      return;
    }
  n = g_utf8_strlen (v, -1);
  if (n > width)
    {
      g_string_append_len (line, v, g_utf8_offset_to_pointer (v, width - 3) - v);
      g_string_append (line, "...");
    }
  else
    {
      g_string_append (line, v);
      for (glong i = n; i < width && !last; i++)
        g_string_append_c (line, ' ');
    }
  if (!last)
    g_string_append_c (line, ' ');
}

/* place, Message-ID, recipients, action and destination: aligned and cut on
 * a terminal, tab-separated in full otherwise. */
static char *
entry_text (const RrReportEntry *e, int width)
{
  g_autofree char *recips = recipients_text (e->rw);
  g_autofree char *dests = e->destinations ? g_strjoinv (", ", (char **) e->destinations)
                                           : g_strdup ("");
  g_autofree char *id = g_strdup_printf ("<%s>", e->message_id ? e->message_id : "");
  g_autofree char *act = g_strdup_printf ("%s %s", action_name (e->action), dests);
  GString *line = g_string_new (NULL);
  int w = width > 0 ? width - 4 : 0;

  column (line, e->place, w * 3 / 10, FALSE);
  column (line, id, w * 2 / 10, FALSE);
  column (line, recips, w * 3 / 10, FALSE);
  column (line, act, w > 0 ? w - (w * 3 / 10) * 2 - w * 2 / 10 : 0, TRUE);
  return g_string_free (line, FALSE);
}

/* The entry's line: printed, or kept with the held entries. */
static void
put_line (RrReport *r, const char *line)
{
  if (line == NULL)
    return;
  if (r->held == NULL)
    fprintf (r->out, "%s\n", line);
  else if (r->held_lines)
    fprintf (r->held_lines, "%s\n", line);
  else
    g_string_append_printf (r->held_text, "%s\n", line);
}

void
rr_report_action (RrReport *r, const RrReportEntry *re)
{
  Entry *e = g_new0 (Entry, 1);
  const GArray *recips = rr_rewrite_get_recipients (re->rw);

  e->action = re->action;
  e->bytes = re->bytes;
  e->routes = g_ptr_array_new ();  /* names owned by r->rule_names */
  for (guint i = 0; i < recips->len; i++)
    {
      const char *name = rule_name (r, &g_array_index (recips, RrReroute, i));
      if (name && !g_ptr_array_find (e->routes, name, NULL))
        g_ptr_array_add (e->routes, (gpointer) name);
    }
  if (r->format == RR_REPORT_JSON)
    e->json = entry_json (re, r->dry_run);
  else if (r->lines && !r->quiet)
    e->text = entry_text (re, r->width);
  tally_entry (r->held ? r->held : &r->tally, e);
  put_line (r, e->json ? e->json : e->text);
  entry_free (e);
}

/* Held entries are counted apart and their lines go to a temporary file,
 * so that holding a large mbox's entries costs no memory. A dry run commits
 * nothing, so it holds nothing. */
void
rr_report_hold (RrReport *r)
{
  if (r->held || r->dry_run)
    return;
  r->held = g_new0 (Tally, 1);
  tally_init (r->held);
  if ((r->format == RR_REPORT_JSON || (r->lines && !r->quiet))
      && (r->held_lines = tmpfile ()) == NULL)
    r->held_text = g_string_new (NULL);
}

static void
copy_held_lines (RrReport *r)
{
  char buf[65536];
  size_t n;

  if (r->held_text)
    fwrite (r->held_text->str, 1, r->held_text->len, r->out);
  if (r->held_lines == NULL || fflush (r->held_lines) != 0 || fseek (r->held_lines, 0, SEEK_SET) != 0)
    return;
  while ((n = fread (buf, 1, sizeof buf, r->held_lines)) > 0)
    fwrite (buf, 1, n, r->out);
}

void
rr_report_release (RrReport *r, gboolean done)
{
  if (r->held == NULL)
    return;
  if (done)
    {
      tally_merge (&r->tally, r->held);
      copy_held_lines (r);
    }
  tally_clear (r->held);
  g_clear_pointer (&r->held, g_free);
  g_clear_pointer (&r->held_lines, fclose);
  if (r->held_text)
    g_string_free (g_steal_pointer (&r->held_text), TRUE);
}

static void
say (RrReport *r, const char *place, const char *text)
{
  if (r->shown)  /* start on a fresh line after a progress line */
    fputs ("\r\033[K", r->tty);
  if (place)
    fprintf (r->err, "reroute: %s: %s\n", place, text);
  else
    fprintf (r->err, "reroute: %s\n", text);
  fflush (r->err);
  if (r->syslog)
    syslog (LOG_ERR, "%s%s%s", place ? place : "", place ? ": " : "", text);
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

static void
print_json_summary (RrReport *r, double secs)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *line = NULL;

  json_builder_begin_object (b);
  add_string (b, "type", "summary");
  add_int (b, "scanned", r->scanned);
  add_int (b, "rewritten", r->tally.rewritten);
  add_int (b, "refiled", r->tally.refiled);
  add_int (b, "unchanged", r->tally.unchanged);
  add_int (b, "skipped", r->skipped);
  add_int (b, "errors", r->errors->len);
  json_builder_set_member_name (b, "seconds");
  json_builder_add_double_value (b, secs);
  json_builder_set_member_name (b, "dry_run");
  json_builder_add_boolean_value (b, r->dry_run);
  json_builder_set_member_name (b, "routes");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->tally.order->len; i++)
    {
      RouteCount *c = g_hash_table_lookup (r->tally.routes, r->tally.order->pdata[i]);
      json_builder_begin_object (b);
      add_string (b, "rule", r->tally.order->pdata[i]);
      add_int (b, "messages", c->messages);
      add_int (b, "bytes", (gint64) c->bytes);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  line = to_line (b);
  fprintf (r->out, "%s\n", line);
}

static void
log_summary (RrReport *r, double secs)
{
  if (!r->syslog)
    return;
  syslog (r->errors->len ? LOG_WARNING : LOG_INFO,
          "%s%u scanned, %u rewritten, %u refiled, %u unchanged, %u skipped, %u errors, %.2f s",
          r->dry_run ? "dry run: " : "", r->scanned, r->tally.rewritten, r->tally.refiled, r->tally.unchanged,
          r->skipped, r->errors->len, secs);
}

void
rr_report_print_summary (RrReport *r)
{
  double secs = (g_get_monotonic_time () - r->started) / 1e6;

  progress (r, TRUE);
  log_summary (r, secs);
  if (r->format == RR_REPORT_JSON)
    print_json_summary (r, secs);
  if (r->quiet || r->format == RR_REPORT_JSON)
    return fflush (r->out), (void) 0;
  for (guint i = 0; r->lines && i < r->tally.order->len; i++)
    {
      RouteCount *c = g_hash_table_lookup (r->tally.routes, r->tally.order->pdata[i]);
      fprintf (r->out, "%s%s: %u message%s, %" G_GUINT64_FORMAT " bytes\n",
               r->dry_run ? "would route " : "routed ", (char *) r->tally.order->pdata[i],
               c->messages, c->messages == 1 ? "" : "s", c->bytes);
    }
  fprintf (r->out,
           "reroute: %s%u scanned, %u rewritten, %u refiled, %u unchanged, %u skipped, %u errors, %.2f s\n",
           r->dry_run ? "dry run, nothing changed: " : "", r->scanned, r->tally.rewritten, r->tally.refiled,
           r->tally.unchanged, r->skipped, r->errors->len, secs);
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
