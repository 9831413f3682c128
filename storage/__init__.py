"""Storage: SQLite (WAL, numbered migrations, one writer thread) and secrets encrypted at rest.

Import the parts from their modules: `storage.db.Database`, `storage.crypto.SecretBox`,
`storage.accounts.AccountStore`, `storage.audit.AuditLog`, `storage.outbox.Outbox`,
`storage.teams.TeamSettings`.
"""
