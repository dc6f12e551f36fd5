-- Ingest tokens: opaque secrets that let a source push measures into some experiments.
-- Only a SHA-256 of the secret is kept; the secret is shown once, at creation.
create table ingest_tokens (
    token_id     text primary key,
    token_hash   text not null unique,
    description  text not null,
    created_by   text,
    created_at   integer not null,
    revoked_at   integer
);

create table ingest_token_experiments (
    token_id       text not null references ingest_tokens (token_id) on delete cascade,
    experiment_id  integer not null references experiments (experiment_id) on delete cascade,
    primary key (token_id, experiment_id)
);
