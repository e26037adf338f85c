/* route.h - the route table: rules loaded from table files and -r flags,
 * looked up one step at a time and resolved to a canonical address.
 *
 * Keys are an address (local@domain), a domain (domain or @domain) or a
 * subdomain wildcard (.parent). Targets are an address, a domain, or the
 * word "inbound". Lookups are hash-table probes: one per key kind and one per
 * parent domain for wildcards, never a scan of the rules.
 *
 * DIAGNOSTICS
 *   rr_route_table_load_file() / _load_data() / _add_route() fail with
 *   RR_ROUTE_ERROR_IO (file unreadable) or RR_ROUTE_ERROR_SYNTAX (bad line,
 *   bad domain, duplicate key in one source); rr_route_table_finish() fails
 *   with RR_ROUTE_ERROR_LOOP or RR_ROUTE_ERROR_CHAIN. Every message names
 *   FILE:LINE, one problem per line, so a caller prints it as it is and
 *   stops before touching any mail.
 *   rr_route_table_resolve() fails (RR_ROUTE_ERROR_CHAIN) only if a chain the
 *   load-time check could not foresee runs past the limit; the address is
 *   then to be left alone and reported. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RR_ROUTE_ERROR (rr_route_error_quark ())
GQuark rr_route_error_quark (void);

typedef enum {
  RR_ROUTE_ERROR_IO,
  RR_ROUTE_ERROR_SYNTAX,
  RR_ROUTE_ERROR_LOOP,
  RR_ROUTE_ERROR_CHAIN,
} RrRouteError;

/* Rule applications allowed in one chain; a final "inbound" is not counted. */
#define RR_ROUTE_MAX_STEPS 16

typedef enum {
  RR_KEY_ADDRESS,
  RR_KEY_DOMAIN,
  RR_KEY_WILDCARD,
} RrKeyKind;

typedef enum {
  RR_TARGET_INBOUND,
  RR_TARGET_DOMAIN,
  RR_TARGET_ADDRESS,
} RrTargetKind;

/* A rule, owned by its table. */
typedef struct {
  RrKeyKind key_kind;
  RrTargetKind target_kind;
  char *key;         /* as written in the source */
  char *target;      /* as written in the source */
  char *source;      /* file name, or "--route" for flags */
  guint line;        /* line in file, or the flag's position (1-based) */
} RrRoute;

typedef struct _RrRouteTable RrRouteTable;

/* (transfer full) */
RrRouteTable *rr_route_table_new (void);
void rr_route_table_free (RrRouteTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RrRouteTable, rr_route_table_free)

/* Characters that start a +extension in a local part (default "+"; "" turns
 * extensions off). Set before resolving. */
void rr_route_table_set_delimiters (RrRouteTable *table, const char *delims);

/* Adds every rule of a table file. Within one file a key may appear once;
 * across files the first file that has a key wins (as Postfix searches its
 * tables in order) and the later rule is kept only for --check to warn of. */
gboolean rr_route_table_load_file (RrRouteTable *table, const char *path,
                                   GError **error);
gboolean rr_route_table_load_data (RrRouteTable *table, const char *name,
                                   const char *data, gsize len, GError **error);

/* Adds a FROM=TO rule from -r/--route; it overrides a file rule with the same
 * key. @index is the flag's 1-based position, used as its "line". */
gboolean rr_route_table_add_route (RrRouteTable *table, const char *spec,
                                   guint index, GError **error);

/* Checks every chain for loops and for more than RR_ROUTE_MAX_STEPS steps.
 * Call once after loading and before resolving. */
gboolean rr_route_table_finish (RrRouteTable *table, GError **error);

/* Rules that can never apply or are overridden, one human-readable line each
 * naming FILE:LINE. (transfer full) */
GPtrArray *rr_route_table_lint (const RrRouteTable *table);

guint rr_route_table_size (const RrRouteTable *table);

/* One lookup step for @address (need not be folded). Returns the rule that
 * applies, or NULL when none does; then *result is untouched. On a match,
 * *result (transfer full) is the address after applying the rule, or NULL
 * for an "inbound" rule. Never fails. */
const RrRoute *rr_route_table_lookup (const RrRouteTable *table,
                                      const char *address, char **result);

/* Resolves @address fully. Returns 1 when a rule applied (then *canonical is
 * the canonical address, (transfer full), and *chain, if not NULL, the rules
 * applied in order, (transfer container)); 0 when no rule matches; -1 with
 * @error when the chain is too long or loops. */
int rr_route_table_resolve (const RrRouteTable *table, const char *address,
                            char **canonical, GPtrArray **chain,
                            GError **error);

/* Whether @text (any bytes) mentions, case-insensitively, a domain that some
 * key could match. FALSE proves no address in it can be routed. */
gboolean rr_route_table_may_match (const RrRouteTable *table,
                                   const char *text, gsize len);

G_END_DECLS
