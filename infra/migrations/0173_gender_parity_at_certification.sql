-- CVF-18 measured at certification too: its definition and formula gain the parts over the certified
-- learners of the same enrolments (derived at read time from the certificate parts already stored).
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["CVF-18"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('CVF-18', 'training', '7, 9',
     'Participación femenina e índice de paridad', 'Participação feminina e índice de paridade', 'Gender share and parity',
     'ratio', ARRAY['country', 'audience', 'course']::text[], false,
     '#distinct F learners / (#distinct F + #distinct M learners), net enrolments in P; GPI = F / M; the same over the certified learners of those enrolments',
     'Women among the unique learners with a net enrolment created in the period whose stated gender is F or M, over those learners; part gender_parity_index is F / M. Learners of other or unstated gender count in part learners only. Measured at enrolment (the value) and at certification: parts certified_female_share and certified_gender_parity_index count the learners of the same enrolments who hold an unrevoked certificate, so the two compare one cohort at entry and at exit.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED
