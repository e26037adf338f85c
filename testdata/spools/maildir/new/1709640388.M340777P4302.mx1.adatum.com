Return-Path: <root@mx1.adatum.com>
Date: Sat, 9 Mar 2024 04:00:01 +0000
From: Cron Daemon <root@mx1.adatum.com>
Subject: Cron <root@mx1> /usr/local/sbin/rotate-logs
Message-ID: <20240309040001.1F2E3@mx1.adatum.com>
X-Cron-Env: <SHELL=/bin/sh>
X-Cron-Env: <HOME=/root>

rotate-logs: mail for administrator@cpandl.net rotated, 3 files.
