/* route.c - the route table: parsing, precedence, chain checks and lint.
 *
 * Why three hash tables keyed by folded text: a lookup must cost the same for
 * a table of ten rules and one of a hundred thousand (alias tables grow that
 * big), so each step of the spec's precedence is one probe, plus one probe
 * per parent label for wildcards. Folding (ASCII-lower-case local part, IDNA
 * ASCII lower-case domain) is done once at load time for keys and once per
 * step for addresses, which is what makes "Bücher.example" and
 * "xn--bcher-kva.example" the same key.
 *
 * Why every rule is kept, not only the ones in force: a rule shadowed by an
 * earlier file or overridden by a flag never applies, but --check must still
 * be able to say so with its file and line. A source with a bad line adds no
 * rule at all, so a caller that goes on anyway never runs on half a table.
 *
 * The load-time check walks each rule's chain once. Domain and wildcard keys
 * stand for any local part; they are walked with GENERIC, a local part no key
 * can hold (keys never contain blanks), and then, only where the lengths
 * add up past the limit, with the local parts of the address rules met on
 * that generic chain; a wildcard ".parent" is walked from "*.parent". A loop
 * always shows on some rule's own walk (every state of a cycle is reached by
 * the rule that applies there), so only the length can come from combining
 * two chains.
 *
 * may_match() must never say no to an address that would route, so it looks
 * at text the way IDNA folds a host name (case, NFKC, ignorable characters,
 * ideographic dots, labels mixing ASCII and Unicode forms), not only for the
 * two spellings of each key domain. */
#include "config.h"

#include "route.h"

#include "address.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

G_DEFINE_QUARK (rr-route-error-quark, rr_route_error)

#define BLANKS " \t\r\v\f"
#define GENERIC " "
#define FLAG_SOURCE "--route"

typedef struct Rule Rule;
struct Rule {
  RrRoute pub;        /* first, so a Rule * is handed out as an RrRoute * */
  char *fkey;         /* folded: "local@domain", "domain" or ".parent" */
  const char *fdomain; /* the domain part of fkey (the parent for wildcards) */
  const char *to;     /* the target without a leading '@' */
  Rule *shadowed_by;  /* the rule in force for the same key, or NULL */
  gboolean is_flag;
  gboolean walked_ok; /* set by finish(): steps is valid */
  guint steps;        /* rule applications on this rule's own chain */
  RrRouteError code;  /* with problem: what finish() found wrong */
  char *problem;
};

struct _RrRouteTable {
  GPtrArray *rules;        /* Rule *, all rules in load order (owned) */
  GHashTable *keys[3];     /* by RrKeyKind: fkey -> Rule * in force */
  GHashTable *needles;     /* key domain -> NFKC Unicode labels if an IDN */
  GStringChunk *sources;
  char *delims;
};

/* A walk along one chain: what resolve() returns and finish() checks. */
typedef struct {
  GPtrArray *chain;        /* const RrRoute *, not owned */
  GPtrArray *seen;         /* folded addresses visited, owned */
  GPtrArray *trail;        /* the same as written, for messages, owned */
  char *final;
  guint steps;
  RrRouteError code;
  char *problem;
} Walk;

static void
rule_free (Rule *r)
{
  if (r == NULL)
    return;
  g_free (r->pub.key);
  g_free (r->pub.target);
  g_free (r->fkey);
  g_free (r->problem);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Rule, rule_free)

/* "FILE:LINE", or "--route #N" for a flag. */
static char *
where (const Rule *r)
{
  if (r->is_flag)
    return g_strdup_printf (FLAG_SOURCE " #%u", r->pub.line);
  return g_strdup_printf ("%s:%u", r->pub.source, r->pub.line);
}

RrRouteTable *
rr_route_table_new (void)
{
  RrRouteTable *t = g_new0 (RrRouteTable, 1);

  t->rules = g_ptr_array_new_with_free_func ((GDestroyNotify) rule_free);
  for (guint i = 0; i < G_N_ELEMENTS (t->keys); i++)
    t->keys[i] = g_hash_table_new (g_str_hash, g_str_equal);
  t->needles = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_strfreev);
  t->sources = g_string_chunk_new (256);
  t->delims = g_strdup ("+");
  return t;
}

void
rr_route_table_free (RrRouteTable *t)
{
  if (t == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (t->keys); i++)
    g_hash_table_unref (t->keys[i]);
  g_hash_table_unref (t->needles);
  g_ptr_array_unref (t->rules);
  g_string_chunk_free (t->sources);
  g_free (t->delims);
  g_free (t);
}

void
rr_route_table_set_delimiters (RrRouteTable *t, const char *delims)
{
  g_free (t->delims);
  t->delims = g_strdup (delims ? delims : "");
}

guint
rr_route_table_size (const RrRouteTable *t)
{
  return g_hash_table_size (t->keys[RR_KEY_ADDRESS])
         + g_hash_table_size (t->keys[RR_KEY_DOMAIN])
         + g_hash_table_size (t->keys[RR_KEY_WILDCARD]);
}

/* ---- parsing ---------------------------------------------------------- */

static gboolean
parse_key (Rule *r, GError **error)
{
  const char *key = r->pub.key;
  g_autofree char *folded = NULL;

  if (key[0] == '.' || key[0] == '@' || strchr (key, '@') == NULL)
    {
      r->pub.key_kind = key[0] == '.' ? RR_KEY_WILDCARD : RR_KEY_DOMAIN;
      folded = rr_address_fold_domain (key + (key[0] == '.' || key[0] == '@'),
                                       -1, error);
      if (folded == NULL)
        return FALSE;
      r->fkey = r->pub.key_kind == RR_KEY_WILDCARD
                  ? g_strconcat (".", folded, NULL) : g_steal_pointer (&folded);
      r->fdomain = r->fkey + (r->pub.key_kind == RR_KEY_WILDCARD);
      return TRUE;
    }
  r->pub.key_kind = RR_KEY_ADDRESS;
  if ((r->fkey = rr_address_fold (key, error)) == NULL)
    return FALSE;
  r->fdomain = strrchr (r->fkey, '@') + 1;
  return TRUE;
}

static gboolean
parse_target (Rule *r, GError **error)
{
  const char *target = r->pub.target;
  g_autofree char *folded = NULL;

  r->to = target;
  if (g_ascii_strcasecmp (target, "inbound") == 0)
    {
      r->pub.target_kind = RR_TARGET_INBOUND;
      return TRUE;
    }
  if (target[0] == '.')
    {
      g_set_error (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_SYNTAX,
                   "a wildcard cannot be a target");
      return FALSE;
    }
  if (target[0] == '@' || strchr (target, '@') == NULL)
    {
      r->pub.target_kind = RR_TARGET_DOMAIN;
      r->to = target + (target[0] == '@');
      folded = rr_address_fold_domain (r->to, -1, error);
    }
  else
    {
      r->pub.target_kind = RR_TARGET_ADDRESS;
      folded = rr_address_fold (target, error);
    }
  return folded != NULL;
}

/* (transfer full) A rule with no place yet, or NULL and a message that names
 * the field at fault. */
static Rule *
rule_new (const char *key, const char *target, GError **error)
{
  g_autoptr (Rule) r = g_new0 (Rule, 1);

  r->pub.key = g_strdup (key);
  r->pub.target = g_strdup (target);
  if (!parse_key (r, error))
    {
      g_prefix_error (error, "key '%s': ", key);
      return NULL;
    }
  if (!parse_target (r, error))
    {
      g_prefix_error (error, "target '%s': ", target);
      return NULL;
    }
  return g_steal_pointer (&r);
}

static char *nameprep_text (const char *text, gsize len);

/* Remembers the domain of a key for may_match(), with the Unicode form of
 * each label when it is an IDN. Label by label: an "xn--" label that is not
 * valid punycode (which folding lets through) makes GLib refuse the whole
 * name, yet an address may still spell the other labels in Unicode; such a
 * label can only be written as it is. */
static void
add_needle (RrRouteTable *t, const char *fdomain)
{
  g_auto (GStrv) labels = NULL;
  g_autofree char *uni = NULL;
  g_autofree char *norm = NULL;

  if (g_hash_table_contains (t->needles, fdomain))
    return;
  labels = g_strsplit (fdomain, ".", -1);
  for (guint i = 0; labels[i] != NULL; i++)
    {
      char *u = g_hostname_to_unicode (labels[i]);
      if (u != NULL)
        g_free (labels[i]), labels[i] = u;
    }
  uni = g_strjoinv (".", labels);
  if (strcmp (uni, fdomain) != 0)
    norm = nameprep_text (uni, strlen (uni)); /* as may_match() sees text */
  g_hash_table_insert (t->needles, g_strdup (fdomain),
                       norm ? g_strsplit (norm, ".", -1) : NULL);
}

/* Takes @r. Earlier files win over later ones; flags win over files. */
static void
insert_rule (RrRouteTable *t, Rule *r)
{
  GHashTable *h = t->keys[r->pub.key_kind];
  Rule *old = g_hash_table_lookup (h, r->fkey);

  if (old == NULL)
    g_hash_table_insert (h, r->fkey, r);
  else if (r->is_flag)
    {
      old->shadowed_by = r;
      g_hash_table_replace (h, r->fkey, r);
    }
  else
    r->shadowed_by = old;
  add_needle (t, r->fdomain);
  g_ptr_array_add (t->rules, r);
}

typedef struct {
  const char *source;
  guint line;
  GPtrArray *rules;   /* Rule *, owned until committed */
  GHashTable *seen;   /* fkey -> Rule *, for duplicates in this source */
  GString *errors;
} Loader;

static void G_GNUC_PRINTF (2, 3)
loader_error (Loader *ld, const char *fmt, ...)
{
  va_list ap;

  g_string_append_printf (ld->errors, "%s:%u: ", ld->source, ld->line);
  va_start (ap, fmt);
  g_string_append_vprintf (ld->errors, fmt, ap);
  va_end (ap);
  g_string_append_c (ld->errors, '\n');
}

/* Splits @line in place at blanks; returns how many fields it has. */
static guint
split_fields (char *line, char **key, char **target)
{
  char *save = NULL;
  guint n = 0;

  for (char *f = strtok_r (line, BLANKS, &save); f;
       f = strtok_r (NULL, BLANKS, &save))
    {
      if (n == 0)
        *key = f;
      else if (n == 1)
        *target = f;
      n++;
    }
  return n;
}

/* (transfer full) The rule on one line, NULL for a blank line or an error. */
static Rule *
parse_line (Loader *ld, const char *text, gsize len)
{
  g_autofree char *line = g_strndup (text, len);
  g_autoptr (GError) err = NULL;
  char *key = NULL, *target = NULL, *hash;
  Rule *r;
  guint n;

  if (strlen (line) != len)
    {
      loader_error (ld, "line holds a NUL byte");
      return NULL;
    }
  if ((hash = strchr (line, '#')) != NULL)
    *hash = '\0';
  /* Checked after the comment is cut: old tables have Latin-1 comments. */
  if (!g_utf8_validate (line, -1, NULL))
    loader_error (ld, "line is not valid UTF-8");
  else if ((n = split_fields (line, &key, &target)) == 0)
    return NULL;
  else if (n != 2)
    loader_error (ld, "expected a key and a target, found %u field%s", n,
                  n == 1 ? "" : "s");
  else if ((r = rule_new (key, target, &err)) == NULL)
    loader_error (ld, "%s", err->message);
  else
    return r;
  return NULL;
}

/* Keeps a parsed rule, refusing a key this source already has. */
static void
loader_add (Loader *ld, Rule *r)
{
  Rule *first = g_hash_table_lookup (ld->seen, r->fkey);

  r->pub.source = (char *) ld->source;
  r->pub.line = ld->line;
  g_ptr_array_add (ld->rules, r);
  if (first != NULL)
    loader_error (ld, "duplicate key '%s' (first at line %u)", r->pub.key,
                  first->pub.line);
  else
    g_hash_table_insert (ld->seen, r->fkey, r);
}

gboolean
rr_route_table_load_data (RrRouteTable *t, const char *name, const char *data,
                          gsize len, GError **error)
{
  g_autoptr (GPtrArray) rules = g_ptr_array_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GString) errors = g_string_new (NULL);
  Loader ld = { g_string_chunk_insert_const (t->sources, name), 0, rules,
                seen, errors };
  const char *end = data + len;

  for (const char *p = data, *eol; p < end; p = eol ? eol + 1 : end)
    {
      Rule *r;

      eol = memchr (p, '\n', end - p);
      ld.line++;
      if ((r = parse_line (&ld, p, (eol ? eol : end) - p)) != NULL)
        loader_add (&ld, r);
    }
  if (errors->len > 0)
    {
      g_ptr_array_set_free_func (rules, (GDestroyNotify) rule_free);
      g_string_truncate (errors, errors->len - 1);
      g_set_error_literal (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_SYNTAX,
                           errors->str);
      return FALSE;
    }
  for (guint i = 0; i < rules->len; i++)
    insert_rule (t, rules->pdata[i]);
  return TRUE;
}

gboolean
rr_route_table_load_file (RrRouteTable *t, const char *path, GError **error)
{
  g_autoptr (GString) data = g_string_new (NULL);
  FILE *f = fopen (path, "r");
  char buf[8192];
  size_t n;
  int saved;

  if (f != NULL)
    {
      while ((n = fread (buf, 1, sizeof buf, f)) > 0)
        g_string_append_len (data, buf, n);
      saved = ferror (f) ? errno : 0;
      fclose (f);
      if (saved == 0)
        return rr_route_table_load_data (t, path, data->str, data->len, error);
      errno = saved;
    }
  g_set_error (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_IO, "%s: %s", path,
               g_strerror (errno));
  return FALSE;
}

/* Splits FROM=TO in place at the first '=': a local part may hold one, and
 * this way it is the target's that can (a key with one must go in a file). */
static gboolean
split_spec (char *spec, char **key, char **target)
{
  char *eq = strchr (spec, '=');

  if (eq == NULL)
    return FALSE;
  *eq = '\0';
  *key = g_strstrip (spec);
  *target = g_strstrip (eq + 1);
  return **key && **target && !strpbrk (*key, BLANKS)
         && !strpbrk (*target, BLANKS);
}

gboolean
rr_route_table_add_route (RrRouteTable *t, const char *spec, guint index,
                          GError **error)
{
  g_autofree char *copy = g_strdup (spec);
  g_autoptr (GError) err = NULL;
  char *key, *target;
  Rule *r, *old;

  if (!split_spec (copy, &key, &target))
    {
      g_set_error (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_SYNTAX,
                   FLAG_SOURCE " #%u: '%s' is not of the form FROM=TO", index,
                   spec);
      return FALSE;
    }
  if ((r = rule_new (key, target, &err)) == NULL)
    {
      g_set_error (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_SYNTAX,
                   FLAG_SOURCE " #%u: %s", index, err->message);
      return FALSE;
    }
  old = g_hash_table_lookup (t->keys[r->pub.key_kind], r->fkey);
  if (old != NULL && old->is_flag)
    {
      g_set_error (error, RR_ROUTE_ERROR, RR_ROUTE_ERROR_SYNTAX,
                   FLAG_SOURCE " #%u: duplicate key '%s' (first at "
                   FLAG_SOURCE " #%u)", index, key, old->pub.line);
      rule_free (r);
      return FALSE;
    }
  r->pub.source = g_string_chunk_insert_const (t->sources, FLAG_SOURCE);
  r->pub.line = index;
  r->is_flag = TRUE;
  insert_rule (t, r);
  return TRUE;
}

/* ---- lookup ----------------------------------------------------------- */

/* The longest wildcard strictly above @fdomain. */
static const Rule *
find_wildcard (const RrRouteTable *t, const char *fdomain)
{
  for (const char *p = strchr (fdomain, '.'); p; p = strchr (p + 1, '.'))
    {
      const Rule *r = g_hash_table_lookup (t->keys[RR_KEY_WILDCARD], p);
      if (r != NULL)
        return r;
    }
  return NULL;
}

/* The rule for local@fdomain in the spec's order. *ext is the offset of the
 * delimiter in @local when the rule is the one for the base address. */
static const Rule *
match (const RrRouteTable *t, const char *local, const char *fdomain,
       gssize *ext)
{
  g_autofree char *lower = g_ascii_strdown (local, -1);
  g_autofree char *key = g_strconcat (lower, "@", fdomain, NULL);
  const Rule *r;
  gssize d;

  *ext = -1;
  if ((r = g_hash_table_lookup (t->keys[RR_KEY_ADDRESS], key)) != NULL)
    return r;
  /* An empty base is no address, so "+x@domain" has no base rule. */
  if ((d = rr_address_find_delimiter (local, t->delims)) > 0)
    {
      g_autofree char *base = g_strdup_printf ("%.*s@%s", (int) d, lower,
                                               fdomain);
      if ((r = g_hash_table_lookup (t->keys[RR_KEY_ADDRESS], base)) != NULL)
        {
          *ext = d;
          return r;
        }
    }
  if ((r = g_hash_table_lookup (t->keys[RR_KEY_DOMAIN], fdomain)) != NULL)
    return r;
  return find_wildcard (t, fdomain);
}

/* (transfer full) The address @r makes of local@..., NULL for inbound. */
static char *
apply (const Rule *r, const char *local, gssize ext)
{
  const char *at;

  switch (r->pub.target_kind)
    {
    case RR_TARGET_DOMAIN:
      return g_strconcat (local, "@", r->to, NULL);
    case RR_TARGET_ADDRESS:
      if (ext < 0)
        return g_strdup (r->to);
      at = strrchr (r->to, '@');
      return g_strdup_printf ("%.*s%s%s", (int) (at - r->to), r->to,
                              local + ext, at);
    case RR_TARGET_INBOUND:
    default:
      return NULL;
    }
}

/* Splits @address and folds its domain, unless @fdomain is given (the
 * synthetic "*.parent" of a wildcard, which is no valid domain). */
static gboolean
split_fold (const char *address, const char *fdomain, char **local,
            char **folded)
{
  g_autofree char *domain = NULL;

  if (!rr_address_split (address, local, &domain))
    return FALSE;
  *folded = fdomain ? g_strdup (fdomain)
                    : rr_address_fold_domain (domain, -1, NULL);
  if (*folded == NULL)
    g_clear_pointer (local, g_free);
  return *folded != NULL;
}

const RrRoute *
rr_route_table_lookup (const RrRouteTable *t, const char *address,
                       char **result)
{
  g_autofree char *local = NULL;
  g_autofree char *fdomain = NULL;
  const Rule *r;
  gssize ext;

  if (!split_fold (address, NULL, &local, &fdomain))
    return NULL;
  if ((r = match (t, local, fdomain, &ext)) == NULL)
    return NULL;
  *result = apply (r, local, ext);
  return &r->pub;
}

/* ---- walking chains --------------------------------------------------- */

static void
walk_init (Walk *w)
{
  memset (w, 0, sizeof *w);
  w->chain = g_ptr_array_new ();
  w->seen = g_ptr_array_new_with_free_func (g_free);
  w->trail = g_ptr_array_new_with_free_func (g_free);
}

static void
walk_clear (Walk *w)
{
  g_ptr_array_unref (w->chain);
  g_ptr_array_unref (w->seen);
  g_ptr_array_unref (w->trail);
  g_free (w->final);
  g_free (w->problem);
}

/* A generic address reads as its domain in messages. */
static const char *
shown (const char *address)
{
  return g_str_has_prefix (address, GENERIC "@") ? address + 2 : address;
}

/* Records a visit; FALSE when local@fdomain was visited before. */
static gboolean
visit (Walk *w, const char *address, const char *local, const char *fdomain)
{
  g_autofree char *lower = g_ascii_strdown (local, -1);
  char *folded = g_strconcat (lower, "@", fdomain, NULL);
  gboolean fresh = TRUE;

  for (guint i = 0; i < w->seen->len && fresh; i++)
    fresh = strcmp (w->seen->pdata[i], folded) != 0;
  g_ptr_array_add (w->seen, folded);
  g_ptr_array_add (w->trail, g_strdup (shown (address)));
  return fresh;
}

static int
walk_fail (Walk *w, RrRouteError code)
{
  w->code = code;
  if (code == RR_ROUTE_ERROR_LOOP)
    {
      g_autofree char *path = NULL;

      g_ptr_array_add (w->trail, NULL);
      path = g_strjoinv (" -> ", (char **) w->trail->pdata);
      g_ptr_array_remove_index (w->trail, w->trail->len - 1);
      w->problem = g_strconcat ("routing loop: ", path, NULL);
    }
  else
    w->problem = g_strdup_printf ("chain longer than %d steps starting at "
                                  "'%s'", RR_ROUTE_MAX_STEPS,
                                  (char *) w->trail->pdata[0]);
  return -1;
}

/* Follows @start's chain: 1 when a rule applied (w->final is the end), 0 when
 * none did, -1 for a loop or a chain past the limit. */
static int
walk (const RrRouteTable *t, const char *start, const char *fdomain0, Walk *w)
{
  g_autofree char *cur = g_strdup (start);
  g_autofree char *local = NULL;
  g_autofree char *fdomain = NULL;
  const Rule *r;
  char *next;
  gssize ext;

  if (!split_fold (cur, fdomain0, &local, &fdomain))
    return 0;
  visit (w, cur, local, fdomain);
  while ((r = match (t, local, fdomain, &ext)) != NULL)
    {
      g_ptr_array_add (w->chain, (gpointer) &r->pub);
      if ((next = apply (r, local, ext)) == NULL)
        break;
      g_free (cur);
      cur = next;
      g_clear_pointer (&local, g_free);
      g_clear_pointer (&fdomain, g_free);
      if (++w->steps > RR_ROUTE_MAX_STEPS)
        return walk_fail (w, RR_ROUTE_ERROR_CHAIN);
      /* Targets were checked at load time, so this only guards. */
      if (!split_fold (cur, NULL, &local, &fdomain))
        break;
      if (!visit (w, cur, local, fdomain))
        return walk_fail (w, RR_ROUTE_ERROR_LOOP);
    }
  if (w->chain->len == 0)
    return 0;
  w->final = g_steal_pointer (&cur);
  return 1;
}

int
rr_route_table_resolve (const RrRouteTable *t, const char *address,
                        char **canonical, GPtrArray **chain, GError **error)
{
  Walk w;
  int rc;

  walk_init (&w);
  rc = walk (t, address, NULL, &w);
  if (rc < 0)
    {
      g_autofree char *at = where ((const Rule *) w.chain->pdata[0]);
      g_set_error (error, RR_ROUTE_ERROR, w.code, "%s: %s", at, w.problem);
    }
  else if (rc > 0)
    {
      *canonical = g_steal_pointer (&w.final);
      if (chain != NULL)
        *chain = g_ptr_array_ref (w.chain);
    }
  walk_clear (&w);
  return rc;
}

/* ---- load-time check -------------------------------------------------- */

/* Walks from @start on behalf of @r; keeps the first problem found for @r.
 * A walk whose first rule is another one is that rule's business. */
static int
check_from (const RrRouteTable *t, Rule *r, const char *start,
            const char *fdomain0, Walk *w)
{
  g_autofree char *at = NULL;
  int rc = walk (t, start, fdomain0, w);

  if (rc >= 0 || w->chain->pdata[0] != r)
    return rc;
  at = where (r);
  r->code = w->code;
  r->problem = g_strdup_printf ("%s: %s", at, w->problem);
  return rc;
}

static gboolean
check_own (const RrRouteTable *t, Rule *r, Walk *w)
{
  g_autofree char *start = NULL;
  g_autofree char *fdomain0 = NULL;

  if (r->pub.key_kind == RR_KEY_ADDRESS)
    start = g_strdup (r->pub.key);
  else if (r->pub.key_kind == RR_KEY_DOMAIN)
    start = g_strconcat (GENERIC "@", r->pub.key + (r->pub.key[0] == '@'),
                         NULL);
  else
    {
      start = g_strconcat (GENERIC "@*", r->pub.key, NULL);
      fdomain0 = g_strconcat ("*", r->fkey, NULL);
    }
  if (check_from (t, r, start, fdomain0, w) < 0)
    return FALSE;
  r->walked_ok = TRUE;
  r->steps = w->steps;
  return TRUE;
}

/* For a domain or wildcard rule @r whose generic walk @w went well: an
 * address rule met i steps down that chain adds its own steps to those i. */
static void
check_combined (const RrRouteTable *t, Rule *r, const Walk *w,
                GHashTable *by_domain)
{
  for (guint i = 1; i < w->seen->len && r->problem == NULL; i++)
    {
      const char *s = w->seen->pdata[i];
      GPtrArray *rules;

      if (!g_str_has_prefix (s, GENERIC "@"))
        break; /* an address target fixed the local part: nothing generic */
      rules = g_hash_table_lookup (by_domain, s + 2);
      for (guint j = 0; rules && j < rules->len && r->problem == NULL; j++)
        {
          const Rule *a = rules->pdata[j];
          g_autofree char *local = NULL;
          g_autofree char *start = NULL;
          Walk w2;

          if (!a->walked_ok || i + a->steps <= RR_ROUTE_MAX_STEPS)
            continue;
          rr_address_split (a->pub.key, &local, NULL);
          if (r->pub.key_kind == RR_KEY_WILDCARD)
            start = g_strconcat (local, "@*", r->fkey, NULL);
          else
            start = g_strconcat (local, "@", r->fdomain, NULL);
          walk_init (&w2);
          check_from (t, r, start, r->pub.key_kind == RR_KEY_WILDCARD
                      ? strrchr (start, '@') + 1 : NULL, &w2);
          walk_clear (&w2);
        }
    }
}

/* fdomain -> GPtrArray of the address rules in force there. */
static GHashTable *
index_addresses (const RrRouteTable *t)
{
  GHashTable *by_domain = g_hash_table_new_full (
    g_str_hash, g_str_equal, NULL, (GDestroyNotify) g_ptr_array_unref);
  GHashTableIter it;
  gpointer value;

  g_hash_table_iter_init (&it, t->keys[RR_KEY_ADDRESS]);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      Rule *a = value;
      GPtrArray *list = g_hash_table_lookup (by_domain, a->fdomain);

      if (list == NULL)
        g_hash_table_insert (by_domain, (char *) a->fdomain,
                             list = g_ptr_array_new ());
      g_ptr_array_add (list, a);
    }
  return by_domain;
}

gboolean
rr_route_table_finish (RrRouteTable *t, GError **error)
{
  g_autoptr (GHashTable) by_domain = index_addresses (t);
  g_autoptr (GString) msg = g_string_new (NULL);
  RrRouteError code = RR_ROUTE_ERROR_LOOP;

  /* Address rules first: the combined check needs their lengths. */
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < t->rules->len; i++)
      {
        Rule *r = t->rules->pdata[i];
        gboolean is_address = r->pub.key_kind == RR_KEY_ADDRESS;
        Walk w;

        if (r->shadowed_by != NULL || is_address != (pass == 0))
          continue;
        g_clear_pointer (&r->problem, g_free);
        r->walked_ok = FALSE;
        walk_init (&w);
        if (check_own (t, r, &w) && pass == 1)
          check_combined (t, r, &w, by_domain);
        walk_clear (&w);
      }
  for (guint i = 0; i < t->rules->len; i++)
    {
      Rule *r = t->rules->pdata[i];

      if (r->problem == NULL)
        continue;
      if (msg->len == 0)
        code = r->code;
      g_string_append_printf (msg, "%s%s", msg->len ? "\n" : "", r->problem);
    }
  if (msg->len == 0)
    return TRUE;
  g_set_error_literal (error, RR_ROUTE_ERROR, code, msg->str);
  return FALSE;
}

/* ---- lint ------------------------------------------------------------- */

/* The rule that would apply in @r's place if @r were not there, when that
 * can be told for every address @r applies to; else NULL. */
static const Rule *
fallback (const RrRouteTable *t, const Rule *r)
{
  g_autofree char *local = NULL;
  const Rule *f;

  if (r->pub.key_kind == RR_KEY_WILDCARD || r->pub.key_kind == RR_KEY_DOMAIN)
    return find_wildcard (t, r->fdomain);
  /* Without it, local+ext@domain might fall to yet another base rule. */
  rr_address_split (r->fkey, &local, NULL);
  if (rr_address_find_delimiter (local, t->delims) >= 0)
    return NULL;
  f = g_hash_table_lookup (t->keys[RR_KEY_DOMAIN], r->fdomain);
  return f ? f : find_wildcard (t, r->fdomain);
}

/* Whether @f gives byte for byte what @r gives, for every address @r takes. */
static gboolean
same_result (const RrRouteTable *t, const Rule *r, const Rule *f)
{
  if (r->pub.target_kind != f->pub.target_kind)
    return FALSE;
  if (r->pub.target_kind == RR_TARGET_INBOUND)
    return TRUE;
  /* An address rule puts a base address's +ext on its target; no fallback
   * does. */
  if (r->pub.target_kind == RR_TARGET_ADDRESS
      && r->pub.key_kind == RR_KEY_ADDRESS && t->delims[0] != '\0')
    return FALSE;
  return strcmp (r->to, f->to) == 0;
}

GPtrArray *
rr_route_table_lint (const RrRouteTable *t)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < t->rules->len; i++)
    {
      const Rule *r = t->rules->pdata[i];
      g_autofree char *at = where (r);
      g_autofree char *other = NULL;
      const Rule *f;

      if (r->shadowed_by != NULL)
        {
          other = where (r->shadowed_by);
          g_ptr_array_add (out, g_strdup_printf (
            "%s: rule for '%s' is %s by %s", at, r->pub.key,
            r->shadowed_by->is_flag ? "overridden" : "shadowed", other));
        }
      else if ((f = fallback (t, r)) != NULL && same_result (t, r, f))
        {
          other = where (f);
          g_ptr_array_add (out, g_strdup_printf (
            "%s: rule for '%s' is redundant: '%s' at %s gives the same result",
            at, r->pub.key, f->pub.key, other));
        }
    }
  return out;
}

/* ---- prefilter -------------------------------------------------------- */

static gboolean
contains_ascii_ci (const char *hay, gsize len, const char *needle)
{
  gsize n = strlen (needle);

  for (gsize i = 0; n <= len && i <= len - n; i++)
    if (g_ascii_strncasecmp (hay + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

/* Characters IDNA maps to nothing, so they may sit inside a domain. */
static gboolean
is_junk (gunichar c)
{
  return c == 0xAD || c == 0x34F || c == 0x1806 || (c >= 0x180B && c <= 0x180D)
         || (c >= 0x200B && c <= 0x200D) || c == 0x2060 || c == 0xFEFF
         || (c >= 0xFE00 && c <= 0xFE0F);
}

/* (transfer full) @text as IDNA's nameprep sees a host name: presentation
 * characters dropped, lower-cased, NFKC, lower-cased again (NFKC can make
 * capitals: U+03D2 gives U+03A5), and every IDNA dot made '.'. These are
 * GLib's steps for g_hostname_to_ascii(), which folds the keys: case
 * folding instead of lower-casing would turn "ß" into "ss", which GLib
 * keeps. */
static char *
nameprep_text (const char *text, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (text, len);
  g_autofree char *lower = NULL;
  g_autofree char *nfkc = NULL;
  GString *out = g_string_new (NULL);

  for (const char *p = valid; *p; p = g_utf8_next_char (p))
    if (!is_junk (g_utf8_get_char (p)))
      g_string_append_unichar (out, g_utf8_get_char (p));
  lower = g_utf8_strdown (out->str, -1);
  nfkc = g_utf8_normalize (lower, -1, G_NORMALIZE_NFKC);
  g_free (lower);
  lower = g_utf8_strdown (nfkc, -1);
  g_string_truncate (out, 0);
  for (const char *p = lower; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      g_string_append_unichar (out, c == 0x3002 || c == 0xFF0E || c == 0xFF61
                                      ? '.' : c);
    }
  return g_string_free (out, FALSE);
}

/* Whether @p starts with labels @i... of a domain, each label in its ASCII
 * (@ace) or Unicode (@uni) form: an address may mix them, and
 * "xn--bcher-kva.café.example" folds like the other two spellings. */
static gboolean
labels_at (const char *p, char **ace, char **uni, guint i)
{
  const char *forms[2] = { ace[i], uni[i] };

  /* An ASCII label's two forms are the same text: trying it twice would
   * double the work at each label, 2^labels for a long key. */
  for (guint f = 0; f < (strcmp (forms[0], forms[1]) == 0 ? 1 : 2); f++)
    {
      gsize n = strlen (forms[f]);

      if (strncmp (p, forms[f], n) != 0)
        continue;
      if (ace[i + 1] == NULL
          || (p[n] == '.' && labels_at (p + n + 1, ace, uni, i + 1)))
        return TRUE;
    }
  return FALSE;
}

static gboolean
contains_idn (const char *prepped, const char *fdomain, char **uni)
{
  g_auto (GStrv) ace = g_strsplit (fdomain, ".", -1);

  if (g_strv_length (ace) != g_strv_length (uni))
    return TRUE; /* cannot tell: say maybe */
  for (const char *p = prepped; *p; p++)
    if (labels_at (p, ace, uni, 0))
      return TRUE;
  return FALSE;
}

gboolean
rr_route_table_may_match (const RrRouteTable *t, const char *text, gsize len)
{
  g_autofree char *prepped = NULL;
  GHashTableIter it;
  gpointer key, uni;

  g_hash_table_iter_init (&it, t->needles);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (contains_ascii_ci (text, len, key))
      return TRUE;
  for (gsize i = 0; i < len && prepped == NULL; i++)
    if ((guchar) text[i] >= 0x80)
      prepped = nameprep_text (text, len);
  if (prepped == NULL)
    return FALSE; /* plain ASCII can spell a domain only one way */
  g_hash_table_iter_init (&it, t->needles);
  while (g_hash_table_iter_next (&it, &key, &uni))
    if (uni ? contains_idn (prepped, key, uni) : strstr (prepped, key) != NULL)
      return TRUE;
  return FALSE;
}
