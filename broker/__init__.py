"""The job backbone shared by server workers, the API and edge workers.

Dramatiq's Redis broker plus what Backroom adds to it: job records written in the same
round trip as the enqueue, wake-ups so an idle worker starts a job within milliseconds,
and a middleware that tracks every attempt.
"""
