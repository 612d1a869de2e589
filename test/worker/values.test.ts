// The ranges search comparisons are built on: a date or number covers the interval its
// written precision implies (FHIR R4 search §3.1.1.4.2 and §3.1.1.4.1).

import { dateRange, numberRange, normalizeString } from '../../src/worker/indexing/values';

const t = (iso: string): number => Date.parse(iso);

test('dates cover their whole precision, in UTC unless a zone is given', () => {
  expect(dateRange('2020')).toEqual({ lo: t('2020-01-01T00:00:00Z'), hi: t('2021-01-01T00:00:00Z') - 1 });
  expect(dateRange('2020-02')).toEqual({ lo: t('2020-02-01T00:00:00Z'), hi: t('2020-03-01T00:00:00Z') - 1 });
  expect(dateRange('2020-12-31')).toEqual({ lo: t('2020-12-31T00:00:00Z'), hi: t('2021-01-01T00:00:00Z') - 1 });
  expect(dateRange('2020-03-04T10:15')).toEqual({ lo: t('2020-03-04T10:15:00Z'), hi: t('2020-03-04T10:16:00Z') - 1 });
  expect(dateRange('2020-03-04T10:15:30+02:00')).toEqual({ lo: t('2020-03-04T08:15:30Z'), hi: t('2020-03-04T08:15:31Z') - 1 });
  expect(dateRange('2020-03-04T10:15:30.5Z')).toEqual({ lo: t('2020-03-04T10:15:30.500Z'), hi: t('2020-03-04T10:15:30.600Z') - 1 });
  expect(dateRange('2020-03-04T10:15:30.123456Z')).toEqual({ lo: t('2020-03-04T10:15:30.123Z'), hi: t('2020-03-04T10:15:30.123Z') });
  expect(dateRange('0050-06')?.lo).toBe(t('0050-06-01T00:00:00Z'));
});

test('impossible dates are not dates', () => {
  for (const bad of ['2020-13', '2021-02-29', '2020-00-10', '2020-01-01T24:00', '20', '2020-1-1', 'yesterday', '2020-01-01T10:00+15:00']) {
    expect({ bad, range: dateRange(bad) }).toEqual({ bad, range: undefined });
  }
  expect(dateRange('2024-02-29')).toBeDefined();
});

test('numbers carry the interval of their significant digits', () => {
  expect(numberRange('100')).toEqual({ value: 100, lo: 99.5, hi: 100.5 });
  expect(numberRange('100.00')).toEqual({ value: 100, lo: 99.995, hi: 100.005 });
  expect(numberRange('1e2')).toEqual({ value: 100, lo: 50, hi: 150 });
  expect(numberRange('-0.5')).toEqual({ value: -0.5, lo: -0.55, hi: -0.45 });
  expect(numberRange('12abc')).toBeUndefined();
});

test('string search folds case and accents', () => {
  expect(normalizeString('Müller-ÉCOLE')).toBe('muller-ecole');
  expect(normalizeString('Ørsted')).toBe('ørsted');
});
