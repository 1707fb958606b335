-- Indicators added to the catalogue after migration 0150: CVF-09 (never-started share) and CVF-18
-- (gender share and parity). Both are derived at read time from the enrolment parts already stored,
-- so only their catalogue rows are new.
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["CVF-09", "CVF-18"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('CVF-09', 'training', '7',
     'Inscritos sin actividad', 'Inscritos sem atividade', 'Never-started share',
     'ratio', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     'net enrolments with no learning event at cohort close / net enrolments (closed cohorts)',
     'Net enrolments of closed cohorts with no progress or assessment event (nor a withdrawal after the start), over net enrolments of closed cohorts.'),
    ('CVF-18', 'training', '7, 9',
     'Participación femenina e índice de paridad', 'Participação feminina e índice de paridade', 'Gender share and parity',
     'ratio', ARRAY['country', 'audience', 'course']::text[], false,
     '#distinct F learners / (#distinct F + #distinct M learners), net enrolments in P; GPI = F / M',
     'Women among the unique learners with a net enrolment created in the period whose stated gender is F or M, over those learners; part gender_parity_index is F / M. Learners of other or unstated gender count in part learners only. Measured at enrolment.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED
