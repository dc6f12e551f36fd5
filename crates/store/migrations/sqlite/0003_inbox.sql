-- Messages already stored, by message id (or body hash), written in the same transaction as
-- their measures: a message the broker delivers again after a crash is acknowledged without
-- being stored twice.
create table inbox (
    message_key   text primary key,
    processed_at  integer not null
);
create index inbox_by_age on inbox (processed_at);
