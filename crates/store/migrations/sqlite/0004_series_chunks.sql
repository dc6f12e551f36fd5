-- The time-series layout: a series is one experiment's measure type with one set of tags.
-- New points land in `recent_blocks` (cheap durable inserts); the compactor moves them into
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

-- One row per series per ingest transaction: the points as they came (see
-- mymonit_tsdb::block), so ingest writes a few rows per batch instead of one per point.
create table recent_blocks (
    block_id     integer primary key autoincrement,
    series_id    integer not null references series (series_id),
    point_count  integer not null,
    min_ts       integer not null,
    max_ts       integer not null,
    -- The highest arrival number in the block.
    last_seq     integer not null,
    data         blob not null
);
create index recent_blocks_by_series on recent_blocks (series_id, max_ts);

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

-- The rows of the first layout's `measures` table are moved into recent blocks by the store
-- when it opens (blocks are binary), which then drops the table.

-- Points older than this many days are dropped; null keeps everything.
alter table experiments add column retention_days integer;
