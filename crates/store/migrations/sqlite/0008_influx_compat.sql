-- Whether writes through the InfluxDB-compatible API may create the measure types they name
-- (off: lines naming unknown types are refused with the reason).
alter table experiments add column create_measure_types integer not null default 0;

-- Personal access tokens: read-only credentials a user makes for tools (Grafana), by the
-- SHA-256 of the secret.
create table personal_tokens (
    token_id    text primary key,
    user_id     text not null references users (user_id) on delete cascade,
    name        text not null,
    scope       text not null,
    token_hash  text not null unique,
    created_at  integer not null,
    expires_at  integer not null,
    revoked_at  integer
);
create index personal_tokens_user on personal_tokens (user_id);
