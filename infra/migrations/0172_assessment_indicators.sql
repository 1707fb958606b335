-- CVF-04 (active learners), CVF-06 (pass rate) and CVF-12 (learning gain). CVF-04 is derived at read
-- time from the start parts already stored; CVF-06 and CVF-12 read new parts that the processors write
-- from final, pre-test and post-test assessments, which the enrolment view now shows too.
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["CVF-04", "CVF-06", "CVF-12"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('CVF-04', 'training', '7',
     'Participantes activos', 'Participantes ativos', 'Active learners',
     'count', ARRAY['country', 'audience', 'course']::text[], false,
     '#distinct learner_key with >= 1 cvf.progress.recorded or cvf.assessment.submitted in P',
     'Distinct learners with at least one progress or assessment event in the period, grouped by the dimensions of the enrolment each event belongs to. An event counts once its enrolment is in the store. Monthly, quarterly or yearly (no weekly periods).'),
    ('CVF-06', 'training', '7',
     'Tasa de aprobación', 'Taxa de aprovação', 'Pass rate',
     'ratio', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     '#net enrolments with a passed final / #net enrolments with a final attempt',
     'Net enrolments that passed the final assessment (in any attempt) over net enrolments that attempted it, by enrolment cohort. Attempts without a pass decision are not counted. Provisional while the cohort is open.'),
    ('CVF-12', 'training', '7',
     'Ganancia de aprendizaje', 'Ganho de aprendizagem', 'Learning gain',
     'points', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     'mean(post - pre); normalised g = mean((post - pre) / (100 - pre)), paired learners only',
     'Mean gain in score points (0-100) from the pre-test to the post-test, over net enrolments with both (paired learners only), by enrolment cohort: the first pre-test attempt against the latest post-test attempt. Part normalised_gain is the mean of (post - pre) / (100 - pre) over the pairs with a pre-test below 100. Provisional while the cohort is open.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED

COMMENT ON COLUMN indicator_definition.unit IS 'count, ratio (0-1), usd, days, hours, percent, points (score points, 0-100) or usd_per_unit';

-- The enrolment view of migration 0150 with four columns added at the end.
CREATE OR REPLACE VIEW cvf_enrolment AS
WITH anchor AS (
    SELECT DISTINCT ON (alcance_member_field(member, 1))
           alcance_member_field(member, 1) AS enrolment_id,
           alcance_member_field(member, 2) AS learner_key,
           NULLIF(alcance_member_field(member, 3), '') AS org_key,
           to_timestamp(alcance_member_field(member, 4)::bigint) AS enrolled_at,
           to_timestamp(NULLIF(alcance_member_field(member, 5), '')::bigint) AS offering_ends_at,
           period_start AS enrolment_month,
           dims::jsonb AS d
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
                                                           ('CVF-12', 'pre_score'), ('CVF-12', 'post_score'))
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
       (SELECT l.value FROM latest l WHERE l.part = 'post_score' AND l.member = a.enrolment_id) AS post_score
  FROM anchor a;

COMMENT ON COLUMN cvf_enrolment.attempted_final IS 'At least one final assessment attempt with a pass decision (CVF-06)';
COMMENT ON COLUMN cvf_enrolment.passed_final IS 'A final assessment attempt passed (CVF-06)';
COMMENT ON COLUMN cvf_enrolment.pre_score IS 'Score (0-100) of the first pre-test attempt, NULL if none (CVF-12)';
COMMENT ON COLUMN cvf_enrolment.post_score IS 'Score (0-100) of the latest post-test attempt, NULL if none (CVF-12)';
