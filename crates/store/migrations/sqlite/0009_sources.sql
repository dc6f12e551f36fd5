-- Pull sources: endpoints MyMonit fetches from on a schedule. Times are epoch milliseconds;
-- `cursor` is the kind's own position in the source's history (FMD: epoch seconds).
-- `lease_owner`/`lease_until_ms` let one instance at a time fetch a source. Ids are never
-- reused (autoincrement): the inbox keys of a deleted source's points name its id.
create table sources (
    source_id       integer primary key autoincrement,
    experiment_id   integer not null references experiments (experiment_id) on delete cascade,
    kind            text not null,
    url             text not null,
    sealed_secret   text,
    include         text,
    interval_secs   integer not null,
    enabled         integer not null,
    created_at_ms   integer not null,
    cursor          integer,
    history_from    integer,
    backlog_secs    integer not null default 0,
    last_success_ms integer,
    last_error      text,
    last_error_ms   integer,
    failures        integer not null default 0,
    points_fetched  integer not null default 0,
    next_fetch_ms   integer not null,
    lease_owner     text,
    lease_until_ms  integer
);
create index sources_experiment on sources (experiment_id);
create index sources_due on sources (next_fetch_ms);
