"""Test harness for the chat platform's integration suite: isolation on the
shared RabbitMQ/NATS (`infra`), the processes (`platform`), and two kinds of
IRC client (`raw` sockets and the `irc` library in `libclient`)."""
