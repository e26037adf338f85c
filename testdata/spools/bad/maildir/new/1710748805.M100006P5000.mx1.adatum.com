Date: Mon, 18 Mar 2024 08:05:00 +0000
From: Broken Client <client@example.org>
To: "Administrator <administrator@cpandl.net>
Subject: unterminated quote in To
Message-ID: <broken-quote-0318@example.org>

The To field above does not parse.
