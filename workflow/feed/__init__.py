"""The change feed (issue 19): every accepted transition and every deadline notice as an event
an integration can pull (``GET /events``) or receive, signed, at a subscription's URL.

:mod:`.events` says what an event holds (never a BSN, a name or a hash of either);
:mod:`.subscriptions` what a subscription is, which URLs and filters it may have, and how its
secret is kept. Plain Python, no I/O: the service layer (:mod:`workflow.service.feed`) runs them.
"""
