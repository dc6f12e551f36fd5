-- Messages without a message id are no longer remembered by their body in `inbox`: two equal
-- bodies are two readings. Keys of that kind written by earlier versions are dropped, so that
-- no reading is ever mistaken for one of them.
delete from inbox where message_key like 'sha256:%';

-- One row per AMQP consumer session (one connection of one server). `name` also names the
-- session's queue on the broker, `<queue>.acked.<name>`: it holds the number of the last batch
-- whose acknowledgements the broker committed (published in the same AMQP transaction as those
-- acknowledgements), and the session consumes it while alive.
create table amqp_sessions (
    session_id        integer primary key,
    name              text not null unique,
    started_at        integer not null,
    -- A server resolving the session holds it until then (epoch seconds), so that one reader
    -- at a time takes the number from the broker.
    claimed_until     integer,
    -- Set once the session's connection is known closed and its committed acknowledgements
    -- have been read back: its remaining rows in amqp_unacked are messages the broker
    -- redelivers.
    resolved_at       integer,
    acked_through     integer
);

-- The multiset of the bodies (hashes) of messages without a message id that a session stored
-- and whose acknowledgement the broker has not yet been seen to commit. Written in the same
-- transaction as their measures; a redelivered message consumes one row of a resolved
-- session, holding its body, instead of being stored again.
create table amqp_unacked (
    session_id   integer not null,
    batch_no     integer not null,
    body_hash    blob not null,
    stored_at    integer not null
);
create index amqp_unacked_by_body on amqp_unacked (body_hash);
create index amqp_unacked_by_batch on amqp_unacked (session_id, batch_no);

-- The next arrival number, shared by every process writing to this database (one writer at a
-- time holds the database's write lock while it takes numbers). The store raises it at open
-- to past any number already stored.
create table arrival_seq (
    id    integer primary key check (id = 1),
    next  integer not null
);
insert into arrival_seq (id, next) values (1, 1);
