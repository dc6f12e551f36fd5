-- Sign-in attempts, counted by every instance alike (a limit of N guesses holds for the whole
-- deployment, not per instance). Keys are SHA-256 hashes of what is counted (a username and a
-- client address, or an address alone), so no username is kept; rows older than the window
-- are deleted as attempts come.
create table login_attempts (
    attempt_id  bigint generated always as identity primary key,
    key_hash    text not null,
    at_ms       bigint not null
);
create index login_attempts_by_key on login_attempts (key_hash, at_ms);
create index login_attempts_by_age on login_attempts (at_ms);
