-- Alert rules on measures, the state of their alerts, what happened to them, and the
-- notifications still to send. Times are epoch milliseconds. Ids are never reused
-- (autoincrement): a deleted rule's notifications keep its id.
create table alert_rules (
    rule_id         integer primary key autoincrement,
    experiment_id   integer not null references experiments (experiment_id) on delete cascade,
    -- The rule (model::alert::RuleSpec, JSON).
    spec            text not null,
    created_by      text,
    created_at_ms   integer not null,
    updated_at_ms   integer not null,
    next_eval_ms    integer not null,
    last_eval_ms    integer,
    last_error      text,
    lease_owner     text,
    lease_until_ms  integer
);
create index alert_rules_experiment on alert_rules (experiment_id);
create index alert_rules_due on alert_rules (next_eval_ms);

-- One row per alert: the rule's (group '') or one per value of its group_by tag.
create table alert_states (
    rule_id          integer not null references alert_rules (rule_id) on delete cascade,
    group_key        text not null,
    state            text not null,
    active_since_ms  integer,
    firing_since_ms  integer,
    last_value       real,
    last_sent_ms     integer,
    primary key (rule_id, group_key)
);

create table alert_events (
    event_id    integer primary key autoincrement,
    rule_id     integer not null references alert_rules (rule_id) on delete cascade,
    group_key   text not null,
    transition  text not null,
    at_ms       integer not null,
    value       real
);
create index alert_events_rule on alert_events (rule_id, event_id);

-- Notifications to Alertmanager and webhooks, kept until delivered or given up, so that a
-- receiver that is down loses nothing. A deleted rule's notifications still go out.
create table alert_notifications (
    notification_id  integer primary key autoincrement,
    rule_id          integer,
    receiver         text not null,
    body             text not null,
    created_at_ms    integer not null,
    attempts         integer not null default 0,
    next_attempt_ms  integer not null,
    status           text not null,
    last_error       text,
    done_at_ms       integer,
    lease_owner      text,
    lease_until_ms   integer
);
create index alert_notifications_due on alert_notifications (status, next_attempt_ms);
create index alert_notifications_rule on alert_notifications (rule_id, notification_id);
-- A receiver's oldest pending notification, which goes out before the others.
create index alert_notifications_receiver on alert_notifications (receiver, notification_id)
    where status = 'pending';
