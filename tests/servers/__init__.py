"""Servers the tests start on 127.0.0.1: aiosmtpd, Postfix's smtp-sink and a scripted SMTP server."""
