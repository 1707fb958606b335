-- Moodle enrolment snapshots: core_enrol_get_enrolled_users has no time filter, so the Moodle connector
-- diffs full snapshots per course. One row per (source, course, learner pseudonym) ever seen; cycles are
-- the connector's poll cycles (stored in its cursor), which makes a re-read page after a crash produce
-- the same events again instead of losing them.
CREATE TABLE moodle_enrolment_snapshot (
    source           text        NOT NULL,
    course_id        bigint      NOT NULL,
    -- Keyed pseudonym of the learner: no Moodle user id, name or e-mail is stored.
    user_key         text        NOT NULL,
    -- Incremented when a withdrawn learner is enrolled again: the new enrolment gets new event ids.
    generation       integer     NOT NULL DEFAULT 0,
    first_seen_cycle bigint      NOT NULL,
    first_seen_at    timestamptz NOT NULL,
    last_seen_cycle  bigint      NOT NULL,
    withdrawn_cycle  bigint,
    withdrawn_at     timestamptz,
    completed_cycle  bigint,
    PRIMARY KEY (source, course_id, user_key)
);

COMMENT ON TABLE moodle_enrolment_snapshot IS 'Previous Moodle enrolment snapshot per course, diffed to emit created and withdrawn enrolments.';
