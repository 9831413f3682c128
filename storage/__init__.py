"""Storage: one set of repositories on SQLite (the default) or PostgreSQL, secrets encrypted at rest.

Import the parts from their modules: `storage.db.Database` (the interface; `Database.connect` opens
either engine), `storage.crypto.SecretBox`, `storage.accounts.AccountStore`, `storage.audit.AuditLog`,
`storage.outbox.Outbox`, `storage.teams.TeamSettings`, and
`storage.sqlite_to_postgres.copy_sqlite_to_postgres`. See docs/storage.md.
"""
