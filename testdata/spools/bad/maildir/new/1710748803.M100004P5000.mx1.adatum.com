Delivered-To: administrator@adatum.com
Date: Mon, 18 Mar 2024 08:03:00 +0000
From: Jane Doe <jane@example.org>
To: administrator@adatum.com
Subject: already canonical
Message-ID: <good-2-0318@example.org>

Already where it belongs.
