"""The admin surface over HTTP: /v1/admin (API), /admin/ (pages, their forms and charts) and its sign-in."""
