/* address.h - addr-spec text: splitting, case and IDNA folding, and finding
 * the addr-specs inside a raw address-list header value.
 *
 * DIAGNOSTICS
 *   rr_address_fold_domain() and rr_address_fold() fail with
 *   RR_ADDRESS_ERROR_DOMAIN for a domain that is not a valid host name in
 *   either UTF-8 or IDNA ASCII form; callers treat such an address as one no
 *   rule can match.
 *   rr_address_list_parse() fails with RR_ADDRESS_ERROR_SYNTAX when the value
 *   does not parse, or when our span scanner and GMime's parser disagree about
 *   which addresses it holds: the caller must then leave the header alone. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define RR_ADDRESS_ERROR (rr_address_error_quark ())
GQuark rr_address_error_quark (void);

typedef enum {
  RR_ADDRESS_ERROR_SYNTAX,
  RR_ADDRESS_ERROR_DOMAIN,
} RrAddressError;

/* One addr-spec found in a header value. start/end are byte offsets into the
 * value that was scanned (end exclusive); the span may contain folding
 * whitespace or comments in obsolete syntax, and is what a rewrite replaces. */
typedef struct {
  gsize start;
  gsize end;
  char *addr; /* the addr-spec with CFWS removed, as written otherwise */
} RrAddressSpan;

/* (transfer full) ASCII, lower-case IDNA form of @domain (len -1: NUL-ended). */
char *rr_address_fold_domain (const char *domain, gssize len, GError **error);

/* (transfer full) "local@domain" with the local part ASCII-lower-cased and the
 * domain folded; FALSE-like NULL with error when there is no '@' or the
 * domain is bad. */
char *rr_address_fold (const char *address, GError **error);

/* Splits at the last '@'. Returns FALSE when there is none or either side is
 * empty. Out strings are (transfer full) and may be NULL. */
gboolean rr_address_split (const char *address, char **local, char **domain);

/* Finds the first character of @delims in @local. Returns its offset, or -1. */
gssize rr_address_find_delimiter (const char *local, const char *delims);

/* Initialises GMime and its address classes, once: called by the parser,
 * and by a caller before it starts threads that parse. */
void rr_address_init (void);

/* (transfer full) Array of RrAddressSpan, in order, for the raw value of an
 * address-list header (everything after the colon, folding included),
 * checked against GMime's address parser. An empty value gives an empty
 * array. Free with rr_address_spans_free(). */
GArray *rr_address_list_parse (const char *value, gsize len, GError **error);
void rr_address_spans_free (GArray *spans);


G_END_DECLS
