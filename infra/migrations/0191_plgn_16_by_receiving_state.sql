-- PLGN-16 counts each authorisation under the member state that receives the directory records (art. 8):
-- its country dimension is now that state (as recipient is), and the denominator is every registered firm.
-- Parts stored before this change hold country 'UNKNOWN': `alcance recompute` rebuilds them from the facts.
-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql(["PLGN-16"]).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('PLGN-16', 'plgn', '8',
     'Tasa de autorización del directorio', 'Taxa de autorização do diretório', 'Directory authorisation rate',
     'ratio', ARRAY['country', 'recipient']::text[], true,
     '#firms authorised for C / stock of registered firms',
     'Firms with an active directory authorisation covering member state C (country, the state that receives the directory records under art. 8; recipient is the same state), over all registered firms, at the end of the period; part withdrawals counts withdrawals in P.')
ON CONFLICT (id) DO UPDATE
SET family = EXCLUDED.family, article = EXCLUDED.article, name_es = EXCLUDED.name_es,
    name_pt = EXCLUDED.name_pt, name_en = EXCLUDED.name_en, unit = EXCLUDED.unit,
    dimensions = EXCLUDED.dimensions, cumulative = EXCLUDED.cumulative, formula = EXCLUDED.formula,
    definition = EXCLUDED.definition;
-- END GENERATED
