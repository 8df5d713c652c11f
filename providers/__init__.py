"""Clients of the third-party services Backroom talks to: Stripe, Printify, Resend, Pushover, Telegram.

Each client is async (aiohttp, one session per process), classifies every outcome as
done, retryable (with the provider's own delay when it gives one) or permanent (with the
provider's reason), and never puts a secret or a private URL into an error message.
"""
