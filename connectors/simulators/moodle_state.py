"""The state of a simulated Moodle site: users, courses, enrolments, certificate issues; tests mutate it.

`state_from_world` fills it from the shared generator's CVF world (one Moodle course per offering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.simulators.generator import World


@dataclass
class MoodleUser:
    """A Moodle account (personal data: only the simulator and the connector's edge see it)."""

    id: int
    username: str
    firstname: str
    lastname: str
    email: str
    country: str
    institution: str = ""
    audience: str = ""
    gender: str = ""


@dataclass
class MoodleCourse:
    """A course (one offering of the CVF)."""

    id: int
    shortname: str
    fullname: str
    startdate: int
    enddate: int
    has_completion_criteria: bool = True
    enablecompletion: bool = True


@dataclass
class MoodleEnrolment:
    """An active user enrolment; `completed_at` is set once the course completion criteria are met."""

    course_id: int
    user_id: int
    timestart: int
    completed_at: int | None = None
    role: str = "student"


@dataclass
class CertIssue:
    """An issued custom certificate (`customcert_issues` row)."""

    id: int
    customcertid: int
    user_id: int
    code: str
    timecreated: int


@dataclass
class MoodleState:
    """The simulated site: users, courses, enrolments, certificate templates and issues."""

    users: dict[int, MoodleUser] = field(default_factory=dict)
    courses: dict[int, MoodleCourse] = field(default_factory=dict)
    enrolments: dict[tuple[int, int], MoodleEnrolment] = field(default_factory=dict)
    customcerts: dict[int, int] = field(default_factory=dict)
    """customcert id -> course id."""
    issues: dict[int, CertIssue] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    """Calls served per function, for cost assertions."""
    fail_next: list[str] = field(default_factory=list)
    """Error codes to answer (HTTP 200 + exception body) to the next calls, one per call."""
    capabilities: set[str] = field(
        default_factory=lambda: {"report/completion:view", "mod/customcert:viewallcertificates"}
    )
    """Capabilities of the service user that the simulated functions check."""
    fail_completion_of: set[int] = field(default_factory=set)
    """User ids whose completion status always fails (`dmlreadexception`), as a corrupt row would."""
    token_in_url: int = 0
    """Requests that carried `wstoken` in the query string (where web servers log it)."""

    def withdraw(self, course_id: int, user_id: int) -> None:
        """Remove an enrolment (Moodle deletes the user_enrolments row)."""
        del self.enrolments[(course_id, user_id)]

    def enrol(self, course_id: int, user_id: int, timestart: int, role: str = "student") -> None:
        """Add an enrolment holding `role` (a role shortname: student, editingteacher, manager...)."""
        self.enrolments[(course_id, user_id)] = MoodleEnrolment(course_id, user_id, timestart, role=role)

    def complete(self, course_id: int, user_id: int, when: int) -> None:
        """Mark an enrolment's course as completed."""
        self.enrolments[(course_id, user_id)].completed_at = when

    def issue(self, customcertid: int, user_id: int, when: int) -> CertIssue:
        """Issue a certificate; ids grow like an auto-increment column."""
        issue_id = max(self.issues, default=0) + 1
        cert = CertIssue(issue_id, customcertid, user_id, f"C{issue_id:06d}X", when)
        self.issues[issue_id] = cert
        return cert


def state_from_world(world: World, *, staff: bool = False) -> MoodleState:
    """A Moodle site holding the shared generator's CVF world: one Moodle course per offering.

    Enrolments withdrawn in the world are left out (Moodle deletes them); completions and certificate
    issues are kept with their times. With `staff`, each course also has an editing teacher and a
    manager enrolled (users 90000+), as real courses do; they are not learners.
    """
    state = MoodleState()
    if staff:
        for n, offering in enumerate(world.offerings):
            for role, offset in (("editingteacher", 0), ("manager", 1)):
                user_id = 90_000 + 10 * n + offset
                state.users[user_id] = MoodleUser(
                    user_id, f"staff{user_id}", "Staff", "Member", f"staff{user_id}@cvf.example", "UY"
                )
                state.enrol(n + 2, user_id, int(offering.starts_at.timestamp()), role=role)
    offering_ids = {offering.offering_id: index + 2 for index, offering in enumerate(world.offerings)}
    for offering in world.offerings:
        course_id = offering_ids[offering.offering_id]
        state.courses[course_id] = MoodleCourse(
            course_id,
            offering.offering_id,
            offering.course_id,
            int(offering.starts_at.timestamp()),
            int(offering.ends_at.timestamp()),
        )
        state.customcerts[100 + course_id] = course_id
    for learner in world.learners:
        first, _, last = learner.name.partition(" ")
        state.users[learner.learner_id] = MoodleUser(
            id=learner.learner_id,
            username=f"u{learner.learner_id}",
            firstname=first,
            lastname=last,
            email=learner.email,
            country=learner.country,
            institution=learner.org_id or "",
            audience=learner.audience,
            gender=learner.gender,
        )
    for enrolment in world.enrolments:
        if enrolment.withdrawn_at is not None:
            continue
        course_id = offering_ids[enrolment.offering_id]
        state.enrol(course_id, enrolment.learner_id, int(enrolment.enrolled_at.timestamp()))
        if enrolment.completed_at is not None:
            state.complete(course_id, enrolment.learner_id, int(enrolment.completed_at.timestamp()))
        if enrolment.certificate is not None:
            state.issue(100 + course_id, enrolment.learner_id, int(enrolment.certificate[1].timestamp()))
    return state
