"""The xAPI IRIs alcance reads: verbs, activity types, and extensions (its own and the profiles')."""

from __future__ import annotations

from typing import Literal

EXTENSION_BASE = "https://w3id.org/alcance/xapi/extensions/"
EXT_COUNTRY = EXTENSION_BASE + "country"
EXT_AUDIENCE = EXTENSION_BASE + "audience"
EXT_ORGANISATION = EXTENSION_BASE + "organisation"
EXT_GENDER = EXTENSION_BASE + "gender"
EXT_COURSE = EXTENSION_BASE + "course"
EXT_OFFERING = EXTENSION_BASE + "offering"
EXT_ENROLMENT = EXTENSION_BASE + "enrolment"
EXT_CERTIFICATE = EXTENSION_BASE + "certificate"
EXT_HOURS = EXTENSION_BASE + "hours"
EXT_ASSESSMENT = EXTENSION_BASE + "assessment"
LMS_STARTING_DATE = "https://w3id.org/xapi/lms/extensions/starting-date"
LMS_ENDING_DATE = "https://w3id.org/xapi/lms/extensions/ending-date"
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"

# Activity types of a part of a course: completing one is progress on the course, not its completion.
MODULE_TYPES = frozenset(
    {"http://adlnet.gov/expapi/activities/module", "http://adlnet.gov/expapi/activities/lesson"}
)
VERB_VOIDED = "http://adlnet.gov/expapi/verbs/voided"

# What a verb means for alcance (the pull connector's docstring has the table; a source's option
# `verbs` adds or overrides IRIs).
Target = Literal["enrolled", "withdrawn", "completed", "assessed", "certified", "progressed"]

DEFAULT_VERBS: dict[str, Target] = {
    "http://adlnet.gov/expapi/verbs/registered": "enrolled",
    "https://xapi.edlm/profiles/edlm-lms/concepts/verbs/enrolled": "enrolled",
    "http://id.tincanapi.com/verb/unregistered": "withdrawn",
    "http://adlnet.gov/expapi/verbs/completed": "completed",
    "https://w3id.org/xapi/adl/verbs/satisfied": "completed",
    "http://adlnet.gov/expapi/verbs/passed": "assessed",
    "http://adlnet.gov/expapi/verbs/failed": "assessed",
    "https://w3id.org/xapi/tla/verbs/achieved": "certified",
    "http://id.tincanapi.com/verb/earned": "certified",
    "http://adlnet.gov/expapi/verbs/progressed": "progressed",
}
