-- The audit trail: append-only, each record chained to the one before by its hash
-- (see mymonit_model::audit). `seq` runs from 1 without gaps.
create table audit_log (
    seq         integer primary key,
    at_ns       integer not null,
    actor_id    text,
    actor_role  text,
    action      text not null,
    -- JSON object of the ids acted on.
    target      text not null,
    status      integer,
    outcome     text not null,
    request_id  text,
    client      text,
    -- JSON: what changed, personal data redacted.
    detail      text not null,
    prev_hash   text not null,
    hash        text not null
);
create index audit_log_by_time on audit_log (at_ns);
create index audit_log_by_actor on audit_log (actor_id, seq);

-- The database refuses changes to the trail; the hash chain shows any that go around this.
create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'the audit trail is append-only');
end;
create trigger audit_log_no_delete before delete on audit_log
begin
    select raise(abort, 'the audit trail is append-only');
end;
