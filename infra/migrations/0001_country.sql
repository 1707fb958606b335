-- Reference data: the 13 ALADI member states (ISO 3166-1) and room for guest countries.
CREATE TABLE country (
    iso2         char(2) PRIMARY KEY,
    iso3         char(3) NOT NULL,
    name_es      text    NOT NULL,
    name_pt      text    NOT NULL,
    name_en      text    NOT NULL,
    is_member    boolean NOT NULL,
    member_since date
);

INSERT INTO country (iso2, iso3, name_es, name_pt, name_en, is_member, member_since) VALUES
    ('AR', 'ARG', 'Argentina', 'Argentina', 'Argentina', true, '1980-08-12'),
    ('BO', 'BOL', 'Bolivia', 'Bolívia', 'Bolivia', true, '1980-08-12'),
    ('BR', 'BRA', 'Brasil', 'Brasil', 'Brazil', true, '1980-08-12'),
    ('CL', 'CHL', 'Chile', 'Chile', 'Chile', true, '1980-08-12'),
    ('CO', 'COL', 'Colombia', 'Colômbia', 'Colombia', true, '1980-08-12'),
    ('CU', 'CUB', 'Cuba', 'Cuba', 'Cuba', true, '1999-08-26'),
    ('EC', 'ECU', 'Ecuador', 'Equador', 'Ecuador', true, '1980-08-12'),
    ('MX', 'MEX', 'México', 'México', 'Mexico', true, '1980-08-12'),
    ('PA', 'PAN', 'Panamá', 'Panamá', 'Panama', true, '2012-05-02'),
    ('PY', 'PRY', 'Paraguay', 'Paraguai', 'Paraguay', true, '1980-08-12'),
    ('PE', 'PER', 'Perú', 'Peru', 'Peru', true, '1980-08-12'),
    ('UY', 'URY', 'Uruguay', 'Uruguai', 'Uruguay', true, '1980-08-12'),
    ('VE', 'VEN', 'Venezuela', 'Venezuela', 'Venezuela', true, '1980-08-12');

COMMENT ON TABLE country IS 'Countries used as the C dimension; is_member marks the 13 ALADI member states.';
