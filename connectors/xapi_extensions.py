"""The xAPI extension IRIs alcance reads: its own (country, audience, course, ...) and the profiles'."""

from __future__ import annotations

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
