-- CVF-22 (pathway continuation), added to the catalogue after migration 0170. It is derived at read
-- time from the enrolment parts already stored, so only its catalogue row is new.
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["CVF-22"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('CVF-22', 'training', '7',
     'Continuidad formativa', 'Continuidade formativa', 'Pathway continuation',
     'ratio', ARRAY['country', 'audience', 'course']::text[], false,
     '#certified learners with a net enrolment in another course <= 12 m after the certificate / #certified learners',
     'Learners certified in the period who enrol (net of withdrawals before the start) in another course within 365 days after the certificate, over learners certified in the period. Grouped by the certified course; provisional while a learner who has not continued is still inside the window.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED
