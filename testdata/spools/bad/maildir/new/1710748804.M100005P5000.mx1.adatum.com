hello world
this is not a mail message
