Date: Mon, 18 Mar 2024 08:07:00 +0000
From: Dana Smith <dana.smith@fabrikam.com>
To: Sales <sales@cpandl.net>
Cc: webmaster@cpandl.org
Subject: another good message
Message-ID: <good-3-0318@fabrikam.com>

Nothing wrong with this one either.
