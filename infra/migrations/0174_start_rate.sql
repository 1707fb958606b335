-- CVF-03 (start rate). The enrolment anchor gains the offering start as a sixth field (anchors stored
-- before have five: their start reads as unknown until `alcance recompute` rebuilds them), and the
-- processors write each enrolment's first learning event; the enrolment view shows both.
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["CVF-03"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('CVF-03', 'training', '7',
     'Tasa de inicio', 'Taxa de início', 'Start rate',
     'ratio', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     '#net enrolments with a learning event <= 14 d after max(enrolled_at, offering start) / #net enrolments whose window has passed',
     'Net enrolments whose first progress or assessment event came at most 14 days after the later of the enrolment and the offering start, over net enrolments whose 14 days have passed, by enrolment cohort. Provisional while some enrolment of the cell is inside its 14 days. Without a known offering start the window opens at the enrolment.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED

-- The enrolment view of migration 0172 with two columns added at the end.
CREATE OR REPLACE VIEW cvf_enrolment AS
WITH anchor AS (
    SELECT DISTINCT ON (alcance_member_field(member, 1))
           alcance_member_field(member, 1) AS enrolment_id,
           alcance_member_field(member, 2) AS learner_key,
           NULLIF(alcance_member_field(member, 3), '') AS org_key,
           to_timestamp(alcance_member_field(member, 4)::bigint) AS enrolled_at,
           to_timestamp(NULLIF(alcance_member_field(member, 5), '')::bigint) AS offering_ends_at,
           period_start AS enrolment_month,
           dims::jsonb AS d,
           to_timestamp(NULLIF(alcance_member_field(member, 6), '')::bigint) AS offering_starts_at
      FROM indicator_member
     WHERE indicator = 'CVF-01' AND part = 'enrolled' AND period_kind = 'month' AND refcount > 0
     ORDER BY alcance_member_field(member, 1), member DESC
), flag AS (
    SELECT indicator, part, member
      FROM indicator_member
     WHERE period_kind = 'month' AND refcount > 0
       AND (indicator, part) IN (('CVF-01', 'withdrawn_before_start'), ('CVF-08', 'withdrawn_after_start'),
                                 ('CVF-08', 'started'), ('CVF-06', 'final_attempted'),
                                 ('CVF-06', 'final_passed'))
), latest AS (
    SELECT indicator, part, member, value FROM indicator_latest
     WHERE period_kind = 'month' AND (indicator, part) IN (('CVF-05', 'completed'), ('CVF-07', 'certified'),
                                                           ('CVF-12', 'pre_score'), ('CVF-12', 'post_score'),
                                                           ('CVF-03', 'first_activity'))
)
SELECT a.enrolment_id, a.learner_key, a.org_key, a.enrolled_at, a.offering_ends_at, a.enrolment_month,
       a.d ->> 'country' AS country, a.d ->> 'audience' AS audience, a.d ->> 'course' AS course,
       a.d ->> 'offering' AS offering, a.d ->> 'gender' AS gender,
       EXISTS (SELECT 1 FROM flag f WHERE f.part = 'withdrawn_before_start' AND f.member = a.enrolment_id)
           AS withdrawn_before_start,
       EXISTS (SELECT 1 FROM flag f WHERE f.part = 'withdrawn_after_start' AND f.member = a.enrolment_id)
           AS withdrawn_after_start,
       EXISTS (SELECT 1 FROM flag f WHERE f.part IN ('started', 'withdrawn_after_start') AND f.member = a.enrolment_id)
           AS started,
       (SELECT to_timestamp(l.value::bigint) FROM latest l
         WHERE l.part = 'completed' AND l.member = a.enrolment_id AND l.value > 0) AS completed_at,
       (SELECT to_timestamp(l.value::bigint) FROM latest l
         WHERE l.part = 'certified' AND l.member = a.enrolment_id AND l.value > 0) AS certified_at,
       EXISTS (SELECT 1 FROM flag f WHERE f.part = 'final_attempted' AND f.member = a.enrolment_id)
           AS attempted_final,
       EXISTS (SELECT 1 FROM flag f WHERE f.part = 'final_passed' AND f.member = a.enrolment_id)
           AS passed_final,
       (SELECT l.value FROM latest l WHERE l.part = 'pre_score' AND l.member = a.enrolment_id) AS pre_score,
       (SELECT l.value FROM latest l WHERE l.part = 'post_score' AND l.member = a.enrolment_id) AS post_score,
       a.offering_starts_at,
       (SELECT to_timestamp(l.value::bigint) FROM latest l
         WHERE l.part = 'first_activity' AND l.member = a.enrolment_id) AS first_activity_at
  FROM anchor a;

COMMENT ON COLUMN cvf_enrolment.offering_starts_at IS 'Start of the offering, NULL when unknown (or the anchor was stored before it was recorded)';
COMMENT ON COLUMN cvf_enrolment.first_activity_at IS 'Time of the first progress or assessment event, NULL if none (CVF-03)';
