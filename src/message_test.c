/* Unit tests for message.c: header splitting, spans and recipients. */
#include <criterion/criterion.h>
#include <string.h>

#include "message.h"

static RrMessage *
msg_new (const char *text)
{
  GError *error = NULL;
  RrMessage *m = rr_message_new (text, strlen (text), &error);
  cr_assert_not_null (m, "%s", error ? error->message : "");
  return m;
}

static char *
field_text (const char *text, const RrField *f)
{
  return g_strndup (text + f->start, f->end - f->start);
}

Test (message, splits_folded_fields_and_stops_at_blank_line)
{
  const char *t = "To: a@x.com,\n\tb@y.com\nSubject: hi\n\nTo: body@z.com\n";
  g_autoptr (RrMessage) m = msg_new (t);
  RrField f;
  cr_assert (rr_message_get_field (m, "to", 0, &f));
  g_autofree char *to = field_text (t, &f);
  cr_assert_str_eq (to, "To: a@x.com,\n\tb@y.com\n");
  cr_assert_not (rr_message_get_field (m, "To", 1, &f), "a body line is not a field");
  cr_assert_eq (rr_message_get_header_end (m), strstr (t, "\n\n") - t + 1);
  cr_assert_str_eq (rr_message_get_eol (m), "\n");
}

Test (message, from_line_and_bom_are_prefix)
{
  const char *t = "\xEF\xBB\xBF" "From a@b Thu Jan  1 00:00:00 1970\r\nTo: x@y.com\r\n\r\nbody";
  g_autoptr (RrMessage) m = msg_new (t);
  cr_assert_eq (rr_message_get_header_start (m), strstr (t, "To:") - t);
  cr_assert_str_eq (rr_message_get_eol (m), "\r\n");
}

Test (message, obsolete_space_before_colon)
{
  const char *t = "Delivered-To : a@cpandl.net\n\n";
  g_autoptr (RrMessage) m = msg_new (t);
  g_autoptr (GArray) r = rr_recipients_new ();
  cr_assert (rr_message_get_envelope (m, r));
  cr_assert_eq (r->len, 1);
}

Test (message, not_a_message)
{
  const char *bad[] = { "hello world\n", "\n\nbody", " continuation first\n", "From x\n" };
  GError *error = NULL;
  cr_assert_null (rr_message_new ("", 0, &error));
  cr_assert (g_error_matches (error, RR_MESSAGE_ERROR, RR_MESSAGE_ERROR_EMPTY));
  g_clear_error (&error);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      cr_assert_null (rr_message_new (bad[i], strlen (bad[i]), &error), "%s", bad[i]);
      cr_assert (g_error_matches (error, RR_MESSAGE_ERROR, RR_MESSAGE_ERROR_NOT_MESSAGE));
      g_clear_error (&error);
    }
}

Test (message, headers_only_without_newline)
{
  const char *t = "Subject: x\nTo: a@b.com";
  g_autoptr (RrMessage) m = msg_new (t);
  RrField f;
  cr_assert (rr_message_get_field (m, "To", 0, &f));
  cr_assert_eq (f.end, strlen (t));
  cr_assert_eq (rr_message_get_header_end (m), strlen (t));
}

Test (message, envelope_order_and_topmost_field)
{
  const char *t = "To: t@x.com\nX-Original-To: o@x.com\nDelivered-To: d1@x.com, d2@x.com\n"
                  "Delivered-To: d3@x.com\n\n";
  g_autoptr (RrMessage) m = msg_new (t);
  g_autoptr (GArray) r = rr_recipients_new ();
  cr_assert (rr_message_get_envelope (m, r));
  cr_assert_eq (r->len, 2);
  RrRecipient *a = &g_array_index (r, RrRecipient, 0);
  cr_assert_str_eq (a->address, "d1@x.com");
  cr_assert_str_eq (a->header, "Delivered-To");
  cr_assert_eq (a->start, strstr (t, "d1@") - t);
  cr_assert_eq (a->end - a->start, strlen ("d1@x.com"));
  cr_assert_str_eq (g_array_index (r, RrRecipient, 1).address, "d2@x.com");
}

Test (message, visible_takes_every_to_and_cc)
{
  const char *t = "To: a@x.com\nCc: B <b@x.com>\nTo: c@x.com\nBcc: z@x.com\n\n";
  g_autoptr (RrMessage) m = msg_new (t);
  g_autoptr (GArray) r = rr_recipients_new ();
  cr_assert_not (rr_message_get_envelope (m, r));
  rr_message_get_visible (m, r);
  cr_assert_eq (r->len, 3);
  cr_assert_str_eq (g_array_index (r, RrRecipient, 1).header, "Cc");
  cr_assert_str_eq (g_array_index (r, RrRecipient, 2).address, "c@x.com");
}

Test (message, bad_field_is_flagged_not_fatal)
{
  const char *t = "Delivered-To: a@cpandl.net;c@d.com\n\n";
  g_autoptr (RrMessage) m = msg_new (t);
  g_autoptr (GArray) r = rr_recipients_new ();
  cr_assert (rr_message_get_envelope (m, r));
  cr_assert_eq (r->len, 1);
  RrRecipient *b = &g_array_index (r, RrRecipient, 0);
  cr_assert (b->bad);
  cr_assert_eq (b->start, 0, "the place of a bad field is where the field starts");
}

Test (message, message_id_and_trace)
{
  const char *t = "Message-ID:\n <abc@host>\nX-Rerouted-From: Admin@CPANDL.net\n\n";
  g_autoptr (RrMessage) m = msg_new (t);
  g_autofree char *id = rr_message_get_message_id (m);
  cr_assert_str_eq (id, "abc@host");
  cr_assert (rr_message_has_trace (m, "admin@cpandl.net"));
  cr_assert_not (rr_message_has_trace (m, "admin@cpandl.org"));
}
