-- PLGN-16 counts a grant only between its start and its end (the PLGN feed's startTime and endTime), as
-- the directory's consent ledger does. A grant reported before the feed carried them counts from its
-- publication on, as before.
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["PLGN-16"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('PLGN-16', 'plgn', '8',
     'Tasa de autorización del directorio', 'Taxa de autorização do diretório', 'Directory authorisation rate',
     'ratio', ARRAY['country', 'recipient']::text[], true,
     '#firms authorised for C / stock of registered firms',
     'Firms with an active directory authorisation covering member state C (country, the state that receives the directory records under art. 8; recipient is the same state), over all registered firms, at the end of the period (at the as-of instant while it runs); a grant counts only between its start and its end, as in the consent ledger; part withdrawals counts withdrawals in P.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED
