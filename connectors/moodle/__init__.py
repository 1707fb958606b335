"""Moodle connector: enrolments, course completions and certificates through Moodle web services (REST).

Delivery guarantee: at-least-once into Kafka with deterministic event ids (consumers de-duplicate).

Moodle without time filters. Only `mod_customcert_list_issues` filters by time; enrolments
(`core_enrol_get_enrolled_users`) and course completions (`core_completion_get_course_completion_status`)
can only be read whole. The connector therefore works in poll cycles. Each cycle:

1. `core_course_get_courses_by_field` (every course, with `enablecompletion`): 1 call.
2. Per course, the enrolled users in pages of `page_size` (`limitfrom` / `limitnumber`, sorted by user
   id). Pages overlap by `page_overlap` users and are cut at the last user id already read, so a user
   enrolled or removed during the scan neither shifts anyone out of the window nor appears twice; when
   the overlap is not enough (more than `page_overlap` users vanished in between) the window moves
   back and the page is read again. Only users holding a role of option `learner_roles` (default
   `student`) are learners; teachers and managers are left out. The learner pseudonyms of the page are
   compared with the previous
   snapshot of that course, stored in PostgreSQL (`moodle_enrolment_snapshot`, pseudonyms only): a new
   key gives `LearnerRegistered` + `EnrolmentCreated`; at the end of the course, keys not seen in this
   cycle give `EnrolmentWithdrawn`. A learner who comes back after a withdrawal starts a new enrolment
   (new `enrolment_id`).
3. Per enrolment not yet known complete, one `core_completion_get_course_completion_status` call
   (`completion_concurrency` at a time, in `prepare_page`, so that a check that keeps failing is
   dead-lettered by the runtime); a course without completion criteria (`nocriteriaset`) is skipped
   for the rest of the cycle, and a course with completion tracking off is never asked (one INFO line).
   `cannotviewreport` on a course that tracks completion means the service user lacks
   `report/completion:view`: a configuration error that stops the connector. A completion gives
   `EnrolmentCompleted` once.
4. `mod_customcert_list_issues` from the last watermark. That function orders by `timecreated DESC`
   with offset paging, so one sweep reads offsets 0, L, 2L... (L <= 500 - `page_overlap`), drops
   issues newer than the oldest one already read in the sweep (new arrivals: the next sweep reads them)
   and de-duplicates on issue id at the boundary. Like enrolment pages, each page reads back
   `page_overlap` issues and moves further back when none of them had been read (issues deleted during
   the sweep shift the offsets). When the sweep ends the watermark (`timecreatedfrom`, inclusive) moves
   to the newest issue of its first page; issues at that second are read again and dropped by event id.
   Each issue gives `CertificateIssued`; the course of its customcert instance comes from
   `core_course_get_course_module_by_instance`, asked once per instance.

Every call is a POST whose body carries the token (never the URL, which web servers log); the
functions called are `FUNCTIONS_CALLED`, all of Moodle 4.5 / 5.x core or mod_customcert.

Calls per cycle = 1 + sum over courses of ceil(enrolled / page_size) + enrolments not yet complete
(minus courses without criteria) + ceil(new issues / L) + 1. With 50 courses of 200 learners, a page
size of 500 and 30 % complete: 1 + 50 + 7,000 + a few = about 7,060 calls; completion status
dominates, so `poll_interval_s` for Moodle should be minutes, not seconds. The snapshot table holds
one row per (course, learner) ever enrolled. Moodle does not say when an enrolment was created or
withdrawn: `enrolled_at` is when the connector first saw it and `withdrawn_at` when it found it gone
(one cycle late at most). Enrolments already present in the first snapshot of a course (a backfill of
a site's history) are dated at the course's start date when that is earlier, not at the first poll:
otherwise every historical enrolment would fall in the month alcance was installed, with a negative
time to completion. `completed_at` is the latest completion time of the course criteria. A course
deleted from Moodle is not scanned again, so its enrolments are not withdrawn. Errors come back as HTTP
200 with an `exception` body: database and maintenance error codes are retried, every other code stops
the connector.

Modules: `client` (web-service calls), `snapshots` (the enrolment snapshots in PostgreSQL), `cursor`
(where a cycle stands), `mapping` (records to events), `connector` (the poll cycle).
"""

from connectors.moodle.client import (
    FUNCTIONS_CALLED,
    RETRYABLE_ERRORCODES,
    MoodleClient,
    MoodleError,
    flatten,
)
from connectors.moodle.connector import MoodleConnector
from connectors.moodle.options import MoodleOptions

__all__ = [
    "FUNCTIONS_CALLED",
    "RETRYABLE_ERRORCODES",
    "MoodleClient",
    "MoodleConnector",
    "MoodleError",
    "MoodleOptions",
    "flatten",
]
