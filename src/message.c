/* message.c - a message as borrowed bytes: header fields split with exact
 * byte spans, the recipients found in them, Message-ID and trace lookups.
 *
 * The header block is split here rather than by GMime's parser because every
 * later step works on byte spans (the rewrite copies the original bytes around
 * the few it changes), and GMime reports a From_-prefixed message's first
 * offset wrongly (GMIME-NOTES.md). The addresses inside the fields are read
 * by address.c, which has GMime's address parser check every one. */
#include "config.h"

#include "message.h"

#include <gmime/gmime.h>
#include <string.h>

#include "address.h"

G_DEFINE_QUARK (rr-message-error-quark, rr_message_error)

struct _RrMessage {
  const char *data;
  gsize len;
  gsize header_start;
  gsize header_end;
  const char *eol;
  GArray *fields; /* RrField, in order */
};

static const char *const envelope_names[] = {
  "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To",
};

static gsize
line_end (const char *data, gsize len, gsize pos)
{
  const char *nl = memchr (data + pos, '\n', len - pos);

  return nl ? (gsize) (nl - data) + 1 : len;
}

/* Length of the field name at @pos if the line is a header field, else 0.
 * Whitespace before the colon is obsolete syntax that real mail still has. */
static gsize
field_name_length (const char *data, gsize end, gsize pos)
{
  gsize p = pos, name_end;

  while (p < end && data[p] > 32 && data[p] < 127 && data[p] != ':')
    p++;
  name_end = p;
  while (p < end && (data[p] == ' ' || data[p] == '\t'))
    p++;
  if (name_end == pos || p >= end || data[p] != ':')
    return 0;
  return name_end - pos;
}

static gsize
skip_prefix (const char *data, gsize len)
{
  gsize pos = 0;

  if (len >= 3 && memcmp (data, "\xEF\xBB\xBF", 3) == 0)
    pos = 3;
  if (len - pos >= 5 && memcmp (data + pos, "From ", 5) == 0)
    pos = line_end (data, len, pos);
  return pos;
}

static gboolean
is_blank_line (const char *data, gsize pos, gsize end)
{
  return end - pos == 1 || (end - pos == 2 && data[pos] == '\r');
}

/* Splits the header block; stops at the blank line, or at the first line that
 * is neither a field nor a continuation (then the body starts there). */
static void
split_fields (RrMessage *msg)
{
  gsize pos = msg->header_start;

  while (pos < msg->len)
    {
      gsize end = line_end (msg->data, msg->len, pos);
      char c = msg->data[pos];
      gsize name;

      if (is_blank_line (msg->data, pos, end) && msg->data[end - 1] == '\n')
        break;
      if ((c == ' ' || c == '\t') && msg->fields->len > 0)
        g_array_index (msg->fields, RrField, msg->fields->len - 1).end = end;
      else if ((name = field_name_length (msg->data, end, pos)) > 0)
        {
          RrField f = { pos, 0, end };
          f.value = (const char *) memchr (msg->data + pos, ':', end - pos) - msg->data + 1;
          g_array_append_val (msg->fields, f);
        }
      else
        break;
      pos = end;
    }
  msg->header_end = pos;
}

RrMessage *
rr_message_new (const char *data, gsize len, GError **error)
{
  g_autoptr (RrMessage) msg = g_new0 (RrMessage, 1);
  gsize first_end;

  if (len == 0)
    {
      g_set_error (error, RR_MESSAGE_ERROR, RR_MESSAGE_ERROR_EMPTY, "empty input, not a message");
      return NULL;
    }
  msg->data = data;
  msg->len = len;
  msg->fields = g_array_new (FALSE, FALSE, sizeof (RrField));
  msg->header_start = skip_prefix (data, len);
  split_fields (msg);
  if (msg->fields->len == 0)
    {
      g_set_error (error, RR_MESSAGE_ERROR, RR_MESSAGE_ERROR_NOT_MESSAGE,
                   "not a message: no header field at byte %" G_GSIZE_FORMAT,
                   msg->header_start);
      return NULL;
    }
  first_end = line_end (data, len, msg->header_start);
  msg->eol = first_end >= 2 && data[first_end - 1] == '\n' && data[first_end - 2] == '\r'
    ? "\r\n" : "\n";
  return g_steal_pointer (&msg);
}

void
rr_message_free (RrMessage *msg)
{
  if (msg == NULL)
    return;
  if (msg->fields)
    g_array_free (msg->fields, TRUE);
  g_free (msg);
}

const char *
rr_message_get_data (const RrMessage *msg)
{
  return msg->data;
}

gsize
rr_message_get_length (const RrMessage *msg)
{
  return msg->len;
}

gsize
rr_message_get_header_start (const RrMessage *msg)
{
  return msg->header_start;
}

gsize
rr_message_get_header_end (const RrMessage *msg)
{
  return msg->header_end;
}

const char *
rr_message_get_eol (const RrMessage *msg)
{
  return msg->eol;
}

static gboolean
field_is (const RrMessage *msg, const RrField *f, const char *name)
{
  gsize n;

  /* Most fields differ at the first letter: no need to measure them. */
  if (g_ascii_tolower (msg->data[f->start]) != g_ascii_tolower (name[0]))
    return FALSE;
  n = strlen (name);
  return field_name_length (msg->data, f->end, f->start) == n
         && g_ascii_strncasecmp (msg->data + f->start, name, n) == 0;
}

gboolean
rr_message_get_field (const RrMessage *msg, const char *name, guint nth, RrField *field)
{
  for (guint i = 0; i < msg->fields->len; i++)
    {
      const RrField *f = &g_array_index (msg->fields, RrField, i);
      if (field_is (msg, f, name) && nth-- == 0)
        {
          *field = *f;
          return TRUE;
        }
    }
  return FALSE;
}

char *
rr_message_get_message_id (const RrMessage *msg)
{
  RrField f;
  GString *id;

  if (!rr_message_get_field (msg, "Message-ID", 0, &f))
    return NULL;
  id = g_string_new (NULL);
  for (gsize i = f.value; i < f.end; i++)
    if (!strchr (" \t\r\n<>", msg->data[i]))
      g_string_append_c (id, msg->data[i]);
  if (id->len == 0)
    return g_string_free (id, TRUE), NULL;
  return g_string_free (id, FALSE);
}

static void
clear_recipient (gpointer p)
{
  g_free (((RrRecipient *) p)->address);
}

GArray *
rr_recipients_new (void)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (RrRecipient));

  g_array_set_clear_func (a, clear_recipient);
  return a;
}

static void
add_field_addresses (const RrMessage *msg, const RrField *f, const char *header,
                     GArray *out)
{
  g_autoptr (GError) error = NULL;
  GArray *spans = rr_address_list_parse (msg->data + f->value, f->end - f->value, &error);

  if (spans == NULL)
    {
      RrRecipient bad = { g_strdup (error->message), header, f->start, f->end, TRUE };
      g_array_append_val (out, bad);
      return;
    }
  for (guint i = 0; i < spans->len; i++)
    {
      RrAddressSpan *s = &g_array_index (spans, RrAddressSpan, i);
      RrRecipient r = { g_steal_pointer (&s->addr), header,
                        f->value + s->start, f->value + s->end, FALSE };
      g_array_append_val (out, r);
    }
  rr_address_spans_free (spans);
}

gboolean
rr_message_get_envelope (const RrMessage *msg, GArray *recipients)
{
  for (guint k = 0; k < G_N_ELEMENTS (envelope_names); k++)
    {
      RrField f;
      if (rr_message_get_field (msg, envelope_names[k], 0, &f))
        {
          add_field_addresses (msg, &f, envelope_names[k], recipients);
          return TRUE;
        }
    }
  return FALSE;
}

void
rr_message_get_visible (const RrMessage *msg, GArray *recipients)
{
  for (guint i = 0; i < msg->fields->len; i++)
    {
      const RrField *f = &g_array_index (msg->fields, RrField, i);
      if (field_is (msg, f, "To"))
        add_field_addresses (msg, f, "To", recipients);
      else if (field_is (msg, f, "Cc"))
        add_field_addresses (msg, f, "Cc", recipients);
    }
}

gboolean
rr_message_has_trace (const RrMessage *msg, const char *address)
{
  g_autofree char *want = rr_address_fold (address, NULL);
  g_autoptr (GArray) traces = rr_recipients_new ();
  RrField f;

  for (guint n = 0; rr_message_get_field (msg, "X-Rerouted-From", n, &f); n++)
    add_field_addresses (msg, &f, "X-Rerouted-From", traces);
  for (guint i = 0; i < traces->len; i++)
    {
      const RrRecipient *t = &g_array_index (traces, RrRecipient, i);
      g_autofree char *have = t->bad ? NULL : rr_address_fold (t->address, NULL);
      if (have && want ? strcmp (have, want) == 0
                       : g_ascii_strcasecmp (t->address, address) == 0)
        return TRUE;
    }
  return FALSE;
}

gint64
rr_message_get_date (const RrMessage *msg)
{
  g_autofree char *value = NULL;
  g_autoptr (GDateTime) date = NULL;
  RrField f;

  if (!rr_message_get_field (msg, "Date", 0, &f))
    return 0;
  value = g_strndup (msg->data + f.value, f.end - f.value);
  date = g_mime_utils_header_decode_date (value);
  return date ? g_date_time_to_unix (date) : 0;
}
