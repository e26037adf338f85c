/* address.c - addr-spec folding and the span scanner for address lists.
 *
 * Why a scanner of our own beside GMime's parser: a rewrite must replace
 * exactly the bytes of one addr-spec and nothing else (GMime's setters refold
 * and re-encode the whole field), so we need each address's byte span, which
 * GMime does not give. GMime stays the judge of what the field holds: the
 * scanner's addresses must agree with internet_address_list_parse(), or the
 * field is reported as not parsing rather than rewritten on a guess (GMime
 * silently drops "c@d" from "a@b;c@d", for one). */
#include "config.h"

#include "address.h"

#include <gmime/gmime.h>
#include <string.h>

G_DEFINE_QUARK (rr-address-error-quark, rr_address_error)

/* Whether g_hostname_to_ascii() would only lower-case @s: true of a name
 * made of letters, digits, '-', '.' and '_' (address_test.c checks this
 * against GLib). Most mail is such, and IDNA costs a fifth of a run. */
static gboolean
is_plain_hostname (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isalnum (*s) && *s != '-' && *s != '.' && *s != '_')
      return FALSE;
  return TRUE;
}

char *
rr_address_fold_domain (const char *domain, gssize len, GError **error)
{
  g_autofree char *copy = len < 0 ? g_strdup (domain) : g_strndup (domain, len);
  g_autofree char *ascii = NULL;

  if (copy[0] == '\0' || copy[0] == '.' || !g_utf8_validate (copy, -1, NULL)
      || strchr (copy, '[') != NULL)
    goto bad;
  ascii = is_plain_hostname (copy) ? g_strdup (copy) : g_hostname_to_ascii (copy);
  if (ascii == NULL || ascii[0] == '\0' || g_str_has_suffix (ascii, ".")
      || strstr (ascii, "..") != NULL)
    goto bad;
  for (const char *p = ascii; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.' && *p != '_')
      goto bad;
  return g_ascii_strdown (ascii, -1);

bad:
  g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_DOMAIN,
               "'%s' is not a valid domain", copy);
  return NULL;
}

gboolean
rr_address_split (const char *address, char **local, char **domain)
{
  const char *at = strrchr (address, '@');

  if (at == NULL || at == address || at[1] == '\0')
    return FALSE;
  if (local)
    *local = g_strndup (address, at - address);
  if (domain)
    *domain = g_strdup (at + 1);
  return TRUE;
}

char *
rr_address_fold (const char *address, GError **error)
{
  g_autofree char *local = NULL;
  g_autofree char *domain = NULL;
  g_autofree char *folded = NULL;
  g_autofree char *lower = NULL;

  if (!rr_address_split (address, &local, &domain))
    {
      g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
                   "'%s' is not of the form local@domain", address);
      return NULL;
    }
  folded = rr_address_fold_domain (domain, -1, error);
  if (folded == NULL)
    return NULL;
  lower = g_ascii_strdown (local, -1);
  return g_strconcat (lower, "@", folded, NULL);
}

gssize
rr_address_find_delimiter (const char *local, const char *delims)
{
  size_t n;

  if (delims == NULL || delims[0] == '\0')
    return -1;
  n = strcspn (local, delims);
  return local[n] ? (gssize) n : -1;
}

/* --- the span scanner ------------------------------------------------- */

typedef enum { TOK_WORD, TOK_SPECIAL } TokKind;

typedef struct {
  TokKind kind;
  char c;       /* the character, for TOK_SPECIAL */
  gsize start;  /* byte span in the value */
  gsize end;
} Token;

typedef struct {
  const char *s;
  gsize len;
  gsize pos;
  GArray *toks;
} Scanner;

static gboolean
skip_delimited (Scanner *sc, char open, char close, gboolean nests)
{
  int depth = 0;

  for (; sc->pos < sc->len; sc->pos++)
    {
      char c = sc->s[sc->pos];
      if (c == '\\')
        sc->pos++;
      else if (c == open && (nests || depth == 0))
        depth++;
      else if (c == close && --depth == 0)
        {
          sc->pos++;
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
is_special (char c)
{
  return strchr ("<>@,;:.[]()\"\\", c) != NULL;
}

/* Splits the value into words (atoms, quoted strings, domain literals) and
 * specials, dropping whitespace and comments. */
static gboolean
tokenize (Scanner *sc, GError **error)
{
  char c = 0;
  Token t = { TOK_WORD, 0, 0, 0 };

  while (sc->pos < sc->len)
    {
      gboolean closed = TRUE;

      c = sc->s[sc->pos];
      t = (Token){ TOK_WORD, 0, sc->pos, 0 };

      if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
        {
          sc->pos++;
          continue;
        }
      /* Outside quotes, comments and literals a control character is no
       * part of any token. GMime ends an address there and drops the rest,
       * which we must not read another way (found by src/message_fuzz). */
      if ((guchar) c < 0x20 || c == 0x7f)
        {
          g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
                       "control character at byte %" G_GSIZE_FORMAT " of the field", sc->pos);
          return FALSE;
        }
      if (c == '(')
        {
          if (!skip_delimited (sc, '(', ')', TRUE))
            goto unterminated;
          continue;
        }
      if (c == '"')
        closed = skip_delimited (sc, '"', '"', FALSE);
      else if (c == '[')
        closed = skip_delimited (sc, '[', ']', FALSE);
      else if (is_special (c))
        {
          t.kind = TOK_SPECIAL;
          t.c = c;
          sc->pos++;
        }
      else
        while (sc->pos < sc->len && !is_special (sc->s[sc->pos])
               && !strchr (" \t\r\n", sc->s[sc->pos]) && (guchar) sc->s[sc->pos] >= 0x20
               && sc->s[sc->pos] != 0x7f)
          sc->pos++;
      if (!closed || (t.kind == TOK_WORD && sc->pos == t.start))
        goto unterminated;
      t.end = sc->pos;
      g_array_append_val (sc->toks, t);
    }
  return TRUE;

unterminated:
  g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
               "unterminated %s at byte %" G_GSIZE_FORMAT " of the field",
               c == '(' ? "comment" : c == '"' ? "quoted string"
               : c == '[' ? "domain literal" : "token", t.start);
  return FALSE;
}

static gboolean
is_tok (const Token *t, char c)
{
  return t->kind == TOK_SPECIAL && t->c == c;
}

/* Checks tokens [a, b) form local@domain (or a bare local part, as GMime
 * accepts) and records the span. */
static gboolean
add_addr_spec (Scanner *sc, guint a, guint b, GArray *spans, GError **error)
{
  const Token *tk = &g_array_index (sc->toks, Token, 0);
  GString *addr = g_string_new (NULL);
  guint ats = 0;
  RrAddressSpan span;

  for (guint i = a; i < b; i++)
    {
      gboolean dot_ok = tk[i].kind == TOK_SPECIAL && (tk[i].c == '.' || tk[i].c == '@');
      if ((tk[i].kind == TOK_SPECIAL && !dot_ok)
          || (i > a && tk[i].kind == TOK_WORD && tk[i - 1].kind == TOK_WORD))
        goto bad;
      ats += is_tok (&tk[i], '@');
      g_string_append_len (addr, sc->s + tk[i].start, tk[i].end - tk[i].start);
    }
  if (ats > 1 || (ats == 1 && (is_tok (&tk[a], '@') || is_tok (&tk[b - 1], '@'))))
    goto bad;
  span.start = tk[a].start;
  span.end = tk[b - 1].end;
  span.addr = g_string_free (addr, FALSE);
  g_array_append_val (spans, span);
  return TRUE;

bad:
  g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
               "'%s' at byte %" G_GSIZE_FORMAT " of the field is not an address",
               addr->str, tk[a].start);
  g_string_free (addr, TRUE);
  return FALSE;
}

/* One mailbox: tokens [a, b) between separators. */
static gboolean
add_mailbox (Scanner *sc, guint a, guint b, GArray *spans, GError **error)
{
  const Token *tk = &g_array_index (sc->toks, Token, 0);
  guint lt = a, gt;

  while (lt < b && !is_tok (&tk[lt], '<'))
    lt++;
  if (lt == b)
    return add_addr_spec (sc, a, b, spans, error);
  for (gt = lt + 1; gt < b && !is_tok (&tk[gt], '>'); gt++)
    if (is_tok (&tk[gt], ':'))  /* obsolete route: <@a,@b:local@domain> */
      lt = gt;
  if (gt != b - 1)
    {
      g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
                   "unbalanced '<' at byte %" G_GSIZE_FORMAT " of the field",
                   tk[lt].start);
      return FALSE;
    }
  if (gt == lt + 1)  /* <>: the null address, nothing to route */
    return TRUE;
  return add_addr_spec (sc, lt + 1, gt, spans, error);
}

/* Walks the tokens: mailboxes separated by ',', groups "name: ... ;". */
static gboolean
scan_list (Scanner *sc, GArray *spans, GError **error)
{
  /* Not &g_array_index (..., 0): with no tokens the data is NULL, and
   * NULL + 0 is undefined behaviour (UBSan, found by src/message_fuzz). */
  const Token *tk = (const Token *) (void *) sc->toks->data;
  guint n = sc->toks->len, start = 0;
  gboolean in_angle = FALSE, in_group = FALSE;

  for (guint i = 0; i <= n; i++)
    {
      if (i < n && is_tok (&tk[i], '<'))
        in_angle = TRUE;
      else if (i < n && is_tok (&tk[i], '>'))
        in_angle = FALSE;
      if (i < n && (in_angle || !(is_tok (&tk[i], ',') || is_tok (&tk[i], ';')
                                  || is_tok (&tk[i], ':'))))
        continue;
      if (i < n && is_tok (&tk[i], ':'))
        {
          if (in_group)
            goto bad;
          in_group = TRUE;  /* what came before was the group's name */
        }
      else
        {
          if (i < n && is_tok (&tk[i], ';'))
            {
              if (!in_group)
                goto bad;
              in_group = FALSE;
            }
          if (i > start && !add_mailbox (sc, start, i, spans, error))
            return FALSE;
        }
      start = i + 1;
    }
  return TRUE;

bad:
  g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
               "misplaced group punctuation at byte %" G_GSIZE_FORMAT " of the field",
               tk[start < n ? start : n - 1].start);
  return FALSE;
}

/* A comparable form: folded when the address folds, else lower-cased. */
static char *
comparable (const char *addr)
{
  char *folded = rr_address_fold (addr, NULL);

  return folded ? folded : g_ascii_strdown (addr, -1);
}

static void
flatten (InternetAddressList *list, GPtrArray *out)
{
  int n = list ? internet_address_list_length (list) : 0;

  for (int i = 0; i < n; i++)
    {
      InternetAddress *ia = internet_address_list_get_address (list, i);
      if (INTERNET_ADDRESS_IS_GROUP (ia))
        flatten (internet_address_group_get_members (INTERNET_ADDRESS_GROUP (ia)), out);
      else
        {
          /* same_address() folds the domain to IDNA itself: GMime's IDN
           * form would only cost a second conversion. */
          const char *a = internet_address_mailbox_get_addr (INTERNET_ADDRESS_MAILBOX (ia));
          if (a && *a)
            g_ptr_array_add (out, (gpointer) a);
        }
    }
}

static gboolean
is_ascii (const char *s)
{
  for (; *s; s++)
    if ((guchar) *s >= 0x80)
      return FALSE;
  return TRUE;
}

/* Whether two addresses are the same once folded. For ASCII, folding is
 * lower-casing (address_test checks the domain half against GLib), so most
 * addresses compare without an allocation. */
static gboolean
same_address (const char *a, const char *b)
{
  g_autofree char *x = NULL;
  g_autofree char *y = NULL;

  if (is_ascii (a) && is_ascii (b))
    return g_ascii_strcasecmp (a, b) == 0;
  x = comparable (a);
  y = comparable (b);
  return strcmp (x, y) == 0;
}

/* GMime must find the same addresses, in the same order. */
static gboolean
agrees_with_gmime (const char *value, gsize len, GArray *spans, GError **error)
{
  g_autofree char *text = g_strndup (value, len);
  g_autoptr (GPtrArray) theirs = g_ptr_array_new ();  /* borrowed from list */
  InternetAddressList *list = NULL;
  gboolean same;

  if (strlen (text) != len)
    {
      g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
                   "NUL byte in the field");
      return FALSE;
    }
  list = internet_address_list_parse (NULL, text);
  flatten (list, theirs);
  same = theirs->len == spans->len;
  for (guint i = 0; same && i < spans->len; i++)
    same = same_address (g_array_index (spans, RrAddressSpan, i).addr, theirs->pdata[i]);
  g_clear_object (&list);
  if (!same)
    g_set_error (error, RR_ADDRESS_ERROR, RR_ADDRESS_ERROR_SYNTAX,
                 "GMime reads %u address%s where %u %s written",
                 theirs->len, theirs->len == 1 ? "" : "es", spans->len,
                 spans->len == 1 ? "is" : "are");
  return same;
}

static void
clear_span (gpointer p)
{
  g_free (((RrAddressSpan *) p)->addr);
}

void
rr_address_init (void)
{
  static gsize gmime_ready;

  if (g_once_init_enter (&gmime_ready))
    {
      g_mime_init ();  /* counted by GMime, so harmless if the caller did too */
      /* GMime's address classes are made here, once, not in whichever
       * worker thread happens to meet the first group or mailbox. */
      g_object_unref (internet_address_list_parse (NULL, "a <a@b.c>, g: d@e.f;"));
      g_once_init_leave (&gmime_ready, 1);
    }
}

GArray *
rr_address_list_parse (const char *value, gsize len, GError **error)
{
  Scanner sc = { value, len, 0, g_array_new (FALSE, FALSE, sizeof (Token)) };
  GArray *spans = g_array_new (FALSE, FALSE, sizeof (RrAddressSpan));
  gboolean ok;

  rr_address_init ();

  g_array_set_clear_func (spans, clear_span);
  ok = tokenize (&sc, error) && scan_list (&sc, spans, error)
       && agrees_with_gmime (value, len, spans, error);
  g_array_free (sc.toks, TRUE);
  if (!ok)
    {
      g_array_free (spans, TRUE);
      return NULL;
    }
  return spans;
}

void
rr_address_spans_free (GArray *spans)
{
  if (spans)
    g_array_free (spans, TRUE);
}
