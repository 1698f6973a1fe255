"""Personal data: the retention purge of recipients' phone numbers and the audit of their reads."""
