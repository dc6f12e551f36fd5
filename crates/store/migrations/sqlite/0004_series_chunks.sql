-- The time-series layout: a series is one experiment's measure type with one set of tags.
-- New points land in `recent_points` (cheap durable inserts); the compactor moves them into
-- `chunks`: compressed runs of one series, sorted by (ts_ns, seq), never overlapping, with
-- the aggregates that let statistics skip decoding.
create table series (
    series_id        integer primary key,
    experiment_id    integer not null references experiments (experiment_id),
    measure_type_id  integer not null references measure_types (measure_type_id),
    -- JSON object of string tags, '' when there are none (so that unique applies).
    tags             text not null default '',
    unique (experiment_id, measure_type_id, tags)
);

create table recent_points (
    -- Arrival order, unique in the store and never reused (kept in chunks too).
    seq        integer primary key autoincrement,
    series_id  integer not null references series (series_id),
    ts_ns      integer not null,
    value      real not null
);
create index recent_points_by_series on recent_points (series_id, ts_ns, seq);

create table chunks (
    chunk_id     integer primary key,
    series_id    integer not null references series (series_id),
    start_ns     integer not null,
    start_seq    integer not null,
    end_ns       integer not null,
    end_seq      integer not null,
    point_count  integer not null,
    sum          real not null,
    min          real not null,
    max          real not null,
    m2           real not null,
    first        real not null,
    last         real not null,
    data         blob not null
);
create index chunks_by_series on chunks (series_id, end_ns, end_seq, start_ns);

insert into series (experiment_id, measure_type_id, tags)
    select distinct experiment_id, measure_type_id, coalesce(tags, '') from measures;
insert into recent_points (seq, series_id, ts_ns, value)
    select m.seq, s.series_id, m.ts_ns, m.value
    from measures m
    join series s on s.experiment_id = m.experiment_id
                 and s.measure_type_id = m.measure_type_id
                 and s.tags = coalesce(m.tags, '');
drop index measures_by_time;
drop table measures;

-- Points older than this many days are dropped; null keeps everything.
alter table experiments add column retention_days integer;
