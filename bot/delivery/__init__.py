"""Delivering approved letters to the customer by email: the message (`mail`, pure), the SMTP
transaction (`smtp`) and the Redis outbox that makes each letter go out once (`outbox`)."""
