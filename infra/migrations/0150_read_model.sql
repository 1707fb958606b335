-- Read model for BI tools (owner: indicators). Rates, ratios and returns are derived by the read API
-- (processors.read.read_indicators) from the stored parts; these views expose the parts, the live
-- members and the joined enrolment records so a BI tool can regroup them without double counting.

-- Catalogue of indicators (domain research section 5).
CREATE TABLE indicator_definition (
    id          text    PRIMARY KEY,
    family      text    NOT NULL,
    article     text    NOT NULL,
    name_es     text    NOT NULL,
    name_pt     text    NOT NULL,
    name_en     text    NOT NULL,
    unit        text    NOT NULL,
    dimensions  text[]  NOT NULL,
    cumulative  boolean NOT NULL,
    formula     text    NOT NULL,
    definition  text    NOT NULL
);

COMMENT ON TABLE indicator_definition IS 'The indicator catalogue of Res. 503 monitoring: one row per indicator id.';
COMMENT ON COLUMN indicator_definition.id IS 'Catalogue id (CVF-01, PLGN-10, ACT-07, ...), the indicator column of every other table';
COMMENT ON COLUMN indicator_definition.article IS 'Article(s) of ALADI/CR Resolution 503 the indicator serves';
COMMENT ON COLUMN indicator_definition.unit IS 'count, ratio (0-1), usd, days, hours, percent or usd_per_unit';
COMMENT ON COLUMN indicator_definition.dimensions IS 'Dimensions stored at full grain; any subset can be grouped on';
COMMENT ON COLUMN indicator_definition.cumulative IS 'true: the value at a period is as of its end (stock, return to date); false: a flow within the period';

-- BEGIN GENERATED from processors.indicators.catalogue.definitions_sql() (the first catalogue; later
-- migrations add the indicators added since, and a test checks a migrated store against the catalogue).
INSERT INTO indicator_definition (id, family, article, name_es, name_pt, name_en, unit, dimensions, cumulative, formula, definition) VALUES
    ('CVF-01', 'training', '7',
     'Inscripciones', 'Inscrições', 'Enrolments',
     'count', ARRAY['country', 'audience', 'course', 'offering', 'gender']::text[], false,
     'gross = #cvf.enrolment.created in P; net = gross - #withdrawn before start',
     'Enrolments created in the period (gross) and those not withdrawn before the start (net).'),
    ('CVF-02', 'training', '7',
     'Participantes únicos alcanzados', 'Participantes únicos alcançados', 'Unique learners reached',
     'count', ARRAY['country', 'audience', 'gender']::text[], false,
     '#distinct learner_key with >= 1 net enrolment in P',
     'Distinct learners with at least one net enrolment created in the period.'),
    ('CVF-05', 'training', '7',
     'Tasa de finalización', 'Taxa de conclusão', 'Completion rate',
     'ratio', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     '#completed / net enrolments, over enrolments whose offering_ends_at + grace <= as_of',
     'Completed enrolments over net enrolments, closed cohorts only (offering end + grace).'),
    ('CVF-07', 'training', '7',
     'Tasa de certificación', 'Taxa de certificação', 'Certification rate',
     'ratio', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     '#certificate.issued (not revoked) / net enrolments (closed cohorts); also / completions',
     'Enrolments holding an unrevoked certificate over net enrolments, closed cohorts only.'),
    ('CVF-08', 'training', '7',
     'Tasa de abandono', 'Taxa de abandono', 'Drop-out rate',
     'ratio', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     '(withdrawn after start + started-not-completed at close) / started (closed cohorts)',
     'Started enrolments withdrawn after the start or not completed at cohort close, over started enrolments, closed cohorts only.'),
    ('CVF-10', 'training', '7',
     'Tiempo hasta finalización', 'Tempo até a conclusão', 'Time to completion',
     'days', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     'median and P90 of (completed_at - enrolled_at) in days',
     'Median (value) and P90 (part p90_days) of days from enrolment to completion, closed cohorts only.'),
    ('CVF-11', 'training', '7',
     'Tiempo hasta certificación', 'Tempo até a certificação', 'Time to certification',
     'days', ARRAY['country', 'audience', 'course', 'offering']::text[], false,
     'median and P90 of (issued_at - enrolled_at) in days',
     'Median (value) and P90 (part p90_days) of days from enrolment to an unrevoked certificate, closed cohorts only.'),
    ('CVF-16', 'training', '7',
     'Alcance por segmento vs meta', 'Alcance por segmento vs meta', 'Segment reach against target',
     'ratio', ARRAY['audience', 'country']::text[], false,
     '#distinct certified learners in segment s / target_s',
     'Unique learners certified in the period in an art. 7 audience, over that audience''s target (table reach_target: annual targets of the activity plan; a month gets 1/12 and a quarter 1/4 of the year''s target). Targets are per audience, so a cell split by country has no value.'),
    ('CVF-17', 'training', '7',
     'Cobertura por país', 'Cobertura por país', 'Country coverage',
     'count', ARRAY['country']::text[], false,
     '#member countries with >= N certified learners; HHI = sum_c share_c^2',
     'Member states (of 13) with at least COUNTRY_COVERAGE_MIN_LEARNERS learners certified in the period; part hhi is the Herfindahl concentration of certified learners by country.'),
    ('CVF-19', 'training', '7',
     'Empresas alcanzadas por la formación', 'Empresas alcançadas pela formação', 'Firms reached by training',
     'count', ARRAY['country', 'audience']::text[], false,
     '#distinct org_key of certified learners',
     'Distinct firms (org keys) of learners certified in the period.'),
    ('CVF-20', 'training', '1, 7',
     'Costo por participante certificado', 'Custo por participante certificado', 'Cost per certified learner',
     'usd_per_unit', ARRAY['offering']::text[], false,
     'sum cost_usd (offerings) / #certificates',
     'Fully loaded cost booked on course offerings in the period over certificates issued (and not revoked) in the period, per offering (cost entries of type COURSE_OFFERING).'),
    ('CVF-23', 'training', '7, 8',
     'Conversión CVF a PLGN', 'Conversão CVF para PLGN', 'CVF to PLGN conversion',
     'ratio', ARRAY['country']::text[], false,
     '#certified MSME learners whose org acts on PLGN <= 90 d / #certified MSME learners with org',
     'MSME learners certified in the period whose firm takes a qualifying PLGN action within 90 days after certification, over certified MSME learners with a firm. Joined at read time by org key: the CVF enrolment anchor holds the learner''s org key, PLGN-02 stores one member per firm and day of action.'),
    ('PLGN-01', 'plgn', '8',
     'Empresas registradas', 'Empresas registradas', 'Registered firms',
     'count', ARRAY['country', 'size_band', 'women_led']::text[], true,
     'stock = #distinct registered org_key up to end of P; flow = new in P',
     'Firms registered on PLGN up to the end of the period (stock); part new is the flow.'),
    ('PLGN-02', 'plgn', '8',
     'Tasa de empresas activas', 'Taxa de empresas ativas', 'Active-firm rate',
     'ratio', ARRAY['country']::text[], true,
     '#firms with >= 1 qualifying action in (end - 90 d, end] / stock',
     'Firms with a qualifying action (opportunity, contact, round registration, meeting) in the 90 days up to the end of the period, over registered firms at that date.'),
    ('PLGN-04', 'plgn', '8',
     'Ofertas y demandas publicadas', 'Ofertas e demandas publicadas', 'Opportunities published',
     'count', ARRAY['country', 'kind']::text[], false,
     '# plgn.opportunity.published by kind',
     'Opportunities (offers and demands) published in the period.'),
    ('PLGN-06', 'plgn', '8',
     'Respuesta a contactos', 'Resposta a contatos', 'Contact response rate',
     'ratio', ARRAY['country']::text[], false,
     '#answered <= 7 d / #requests; median response hours',
     'Contact requests made in the period answered within 7 days, over requests; part median_response_hours over answered requests.'),
    ('PLGN-07', 'plgn', '1',
     'Reuniones realizadas y cumplimiento', 'Reuniões realizadas e cumprimento', 'Meetings held and fulfilment',
     'ratio', ARRAY['activity', 'modality']::text[], false,
     'held / scheduled; no-show = no_show / scheduled',
     'Meetings held over meetings scheduled, by slot period; part no_show_rate.'),
    ('PLGN-09', 'plgn', '1',
     'Expectativas de negocios', 'Expectativas de negócios', 'Expected business',
     'usd', ARRAY['activity', 'horizon']::text[], false,
     'sum expected_value_usd over deduplicated meeting outcomes',
     'Expected business (USD) of meeting outcomes, counted once per meeting (latest report).'),
    ('PLGN-10', 'plgn', '1',
     'Negocios concretados', 'Negócios concretizados', 'Realised business',
     'usd', ARRAY['activity', 'country', 'counterpart_country']::text[], true,
     'sum over deals of the latest cumulative realised value',
     'Latest cumulative realised value per deal (USD), one report per deal: the exporter''s report wins over the importer''s, a later wave over an earlier one (rules 1 and 2 of section 5).'),
    ('PLGN-11', 'plgn', '1',
     'Tasa de concreción', 'Taxa de concretização', 'Realisation ratio',
     'ratio', ARRAY['activity']::text[], true,
     'PLGN-10 / PLGN-09',
     'Realised business over expected business, per activity (population version).'),
    ('PLGN-16', 'plgn', '8',
     'Tasa de autorización del directorio', 'Taxa de autorização do diretório', 'Directory authorisation rate',
     'ratio', ARRAY['country', 'recipient']::text[], true,
     '#firms authorised for R / stock of firms of C',
     'Firms with an active directory authorisation covering member state R, over registered firms of origin C, at the end of the period; part withdrawals counts withdrawals in P.'),
    ('ACT-01', 'activities', '1',
     'Costo total', 'Custo total', 'Fully loaded cost',
     'usd', ARRAY['activity', 'category', 'payer']::text[], false,
     'sum cost_usd',
     'Cost entries (USD at the event-date rate) of promotion activities by category and payer.'),
    ('ACT-02', 'activities', '1',
     'Empresas atendidas', 'Empresas atendidas', 'Firms served',
     'count', ARRAY['activity']::text[], false,
     '#distinct org_key with >= 1 meeting held',
     'Distinct firms that attended at least one meeting held in an activity.'),
    ('ACT-03', 'activities', '1',
     'Costo por empresa atendida', 'Custo por empresa atendida', 'Cost per firm served',
     'usd_per_unit', ARRAY['activity']::text[], true,
     'ACT-01 / ACT-02',
     'Cumulative cost over cumulative firms served, per activity, as of the period end.'),
    ('ACT-04', 'activities', '1',
     'Costo por reunión', 'Custo por reunião', 'Cost per meeting held',
     'usd_per_unit', ARRAY['activity']::text[], true,
     'ACT-01 / #meetings held',
     'Cumulative cost over cumulative meetings held, per activity, as of the period end.'),
    ('ACT-05', 'activities', '1',
     'Volumen de negocios atribuible', 'Volume de negócios atribuível', 'Attributable business volume',
     'usd', ARRAY['activity']::text[], true,
     'sum_deals realised x attribution% x confidence%',
     'Sum over deduplicated deals of realised value x attribution% x confidence% (latest report per deal, exporter first); part realised_usd is the unadjusted sum. Provisional like ACT-07.'),
    ('ACT-06', 'activities', '1',
     'Negocios por dólar invertido', 'Negócios por dólar investido', 'Business per USD',
     'usd_per_unit', ARRAY['activity']::text[], true,
     'ACT-05 / ACT-01',
     'Attributable business volume over fully loaded cost, per activity, as of the period end; provisional like ACT-07.'),
    ('ACT-07', 'activities', '1',
     'Retorno de la inversión', 'Retorno do investimento', 'Return on investment',
     'percent', ARRAY['activity']::text[], true,
     '(ACT-05 x m - ACT-01) / ACT-01 x 100',
     '(attributable business x m - cost) / cost x 100, per activity, as of the period end; provisional until 12 months after the activity''s last session.'),
    ('ACT-08', 'activities', '1',
     'Relación beneficio-costo', 'Relação benefício-custo', 'Benefit-cost ratio',
     'ratio', ARRAY['activity']::text[], true,
     '(ACT-05 x m) / ACT-01',
     'Attributable business x m over cost, per activity, as of the period end; provisional like ACT-07.'),
    ('ACT-13', 'activities', '1',
     'ROI anual de la cartera', 'ROI anual da carteira', 'Annual portfolio ROI',
     'percent', ARRAY[]::text[], false,
     '(sum adj. benefit x m - sum cost) / sum cost x 100 over activities closed in Y',
     'ROI over the activities whose 12-month window (last session + 365 d) closed in the period, with their whole cost and attributable business.');
-- END GENERATED

-- Targets of CVF-16 (reach of the art. 7 audiences), entered from ALADI's annual activity plan
-- (Programa de Actividades). A month gets 1/12 and a quarter 1/4 of the year's target.
CREATE TABLE reach_target (
    indicator  text    NOT NULL DEFAULT 'CVF-16' REFERENCES indicator_definition (id),
    audience   text    NOT NULL CHECK (audience IN ('TPO_AUTHORITY', 'BUSINESS_CHAMBER', 'SECTOR_ASSOCIATION', 'MSME')),
    year       integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    target     numeric NOT NULL CHECK (target > 0),
    source     text    NOT NULL DEFAULT 'Programa de Actividades',
    PRIMARY KEY (indicator, audience, year)
);

COMMENT ON TABLE reach_target IS 'Annual targets of unique certified learners per art. 7 audience (CVF-16), from the activity plan.';
COMMENT ON COLUMN reach_target.target IS 'Unique certified learners planned for the year';
COMMENT ON COLUMN reach_target.source IS 'Document the target comes from (e.g. Programa de Actividades 2026)';

-- Members are stored as "|"-separated fields with "%" and "|" escaped inside each field.
CREATE FUNCTION alcance_member_field(member text, n integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN replace(replace(split_part(member, '|', n), '%7C', '|'), '%25', '%');

COMMENT ON FUNCTION alcance_member_field(text, integer) IS 'Field n (1-based) of a composite part member, unescaped';

CREATE VIEW indicator_member_live AS
SELECT indicator, period_kind, period_start, dims::jsonb AS dimensions, part, member
  FROM indicator_member
 WHERE refcount > 0;

COMMENT ON VIEW indicator_member_live IS 'Members counted by distinct parts (e.g. learners, firms, enrolments): count DISTINCT member over any grouping of dimensions for one period_kind.';
COMMENT ON COLUMN indicator_member_live.period_kind IS 'month, quarter or year: filter on exactly one';
COMMENT ON COLUMN indicator_member_live.period_start IS 'First day of the period (UTC) of the contributing event';
COMMENT ON COLUMN indicator_member_live.dimensions IS 'The part''s dimensions at full grain (JSON object)';
COMMENT ON COLUMN indicator_member_live.member IS 'The counted unit (pseudonymous key or entity id, possibly composite)';

CREATE VIEW indicator_latest AS
SELECT DISTINCT ON (indicator, period_kind, part, member)
       indicator, period_kind, part, member, period_start, dims::jsonb AS dimensions,
       amount AS value, order_key, event_id
  FROM indicator_report
 ORDER BY indicator, period_kind, part, member, order_key DESC, event_id DESC;

COMMENT ON VIEW indicator_latest IS 'Per latest-value part and member (deal, meeting, enrolment) the winning report across all periods: sum value over any grouping for one period_kind.';
COMMENT ON COLUMN indicator_latest.value IS 'The member''s current value (realised USD, expected USD, epoch seconds for time parts)';
COMMENT ON COLUMN indicator_latest.period_start IS 'Period of the winning report (a deal counts where its latest report falls)';
COMMENT ON COLUMN indicator_latest.order_key IS 'Why this report wins: highest order key (deals: exporter first, then wave, then time)';

CREATE VIEW cvf_enrolment AS
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
                                 ('CVF-08', 'started'))
), latest AS (
    SELECT indicator, part, member, value FROM indicator_latest
     WHERE period_kind = 'month' AND (indicator, part) IN (('CVF-05', 'completed'), ('CVF-07', 'certified'))
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
         WHERE l.part = 'certified' AND l.member = a.enrolment_id AND l.value > 0) AS certified_at
  FROM anchor a;

COMMENT ON VIEW cvf_enrolment IS 'One row per CVF enrolment joined from its stored parts (anchor, withdrawals, start, completion, certificate); rates by closed cohort: filter offering_ends_at + grace <= now and count.';
COMMENT ON COLUMN cvf_enrolment.enrolment_id IS 'Source enrolment id (non-personal)';
COMMENT ON COLUMN cvf_enrolment.learner_key IS 'Pseudonymous learner key (keyed HMAC), never a personal identifier';
COMMENT ON COLUMN cvf_enrolment.org_key IS 'Pseudonymous key of the learner''s organisation, NULL when unknown';
COMMENT ON COLUMN cvf_enrolment.enrolment_month IS 'First day of the UTC month of enrolment (the cohort period)';
COMMENT ON COLUMN cvf_enrolment.offering_ends_at IS 'End of the offering; the cohort closes settings.processor.cohort_grace_days later';
COMMENT ON COLUMN cvf_enrolment.withdrawn_before_start IS 'Withdrawn before the offering started (not a net enrolment)';
COMMENT ON COLUMN cvf_enrolment.started IS 'At least one progress or assessment event, or withdrawn after the start';
COMMENT ON COLUMN cvf_enrolment.completed_at IS 'Latest completion time, NULL if not completed';
COMMENT ON COLUMN cvf_enrolment.certified_at IS 'Issue time of the current (unrevoked) certificate, NULL if none';

CREATE VIEW cvf_plgn_conversion AS
SELECT e.enrolment_id, e.learner_key, e.org_key, e.country, e.certified_at,
       EXISTS (
           SELECT 1 FROM indicator_member m
            WHERE m.indicator = 'PLGN-02' AND m.part = 'active_day' AND m.period_kind = 'month'
              AND m.refcount > 0 AND alcance_member_field(m.member, 1) = e.org_key
              AND alcance_member_field(m.member, 2)::date
                  BETWEEN (e.certified_at AT TIME ZONE 'UTC')::date AND (e.certified_at AT TIME ZONE 'UTC')::date + 90
       ) AS converted
  FROM cvf_enrolment e
 WHERE e.certified_at IS NOT NULL AND e.org_key IS NOT NULL AND e.audience = 'MSME';

COMMENT ON VIEW cvf_plgn_conversion IS 'CVF-23 at read time: certified MSME learners with a firm, and whether the firm took a qualifying PLGN action (PLGN-02 active days, registration included) within 90 days of the certificate.';
COMMENT ON COLUMN cvf_plgn_conversion.converted IS 'true when the org key has a PLGN active day between the certificate date and 90 days later (UTC dates)';
