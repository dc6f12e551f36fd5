-- MyMonit metadata and (until the time-series engine replaces it) the measures table.
-- Migrations are never edited once released: add a new numbered file instead.

create table users (
    user_id              text primary key,
    name                 text,
    username             text unique,
    email                text unique,
    role                 text not null check (role in ('ADMIN', 'SCIENTIST', 'AUDITOR')),
    password_hash        text,
    -- MyMonit tokens carry the generation they were issued under; changing the password
    -- moves to the next one, so every earlier token is refused at once.
    token_generation     integer not null default 0,
    created_at           integer not null,
    -- GDPR erasure: personal data and credentials are nulled, the row stays as a tombstone so
    -- the pseudonymous id keeps meaning the same person in the audit trail.
    erased_at            integer
);

create table experiments (
    experiment_id  integer primary key autoincrement,
    name           text not null unique,
    created_at     integer not null
);

create table associations (
    experiment_id  integer not null references experiments (experiment_id) on delete cascade,
    user_id        text not null references users (user_id) on delete cascade,
    created_at     integer not null,
    primary key (experiment_id, user_id)
);
create index associations_by_user on associations (user_id);

create table measure_types (
    measure_type_id  integer primary key autoincrement,
    name             text not null unique,
    symbol           text not null,
    quantity         text not null
);

create table measures (
    seq              integer primary key autoincrement,
    experiment_id    integer not null references experiments (experiment_id),
    measure_type_id  integer not null references measure_types (measure_type_id),
    ts_ns            integer not null,
    value            real not null,
    -- JSON object of string tags, null when there are none.
    tags             text
);
create index measures_by_time on measures (experiment_id, ts_ns, seq);

-- Logged-out tokens, by SHA-256 of the token, until they would have expired anyway.
create table revoked_tokens (
    token_hash  text primary key,
    expires_at  integer not null
);
