"""What admins read and do: queues, dead letters, jobs, workers, edge nodes, schedules, endpoints, audit.

Shared by the admin API and pages (web.admin) and the CLI; the Redis read models of the admin
surface (job search, workers, replay) live here, the runtime's own (dead letters, queue stats)
stay in broker/.
"""
