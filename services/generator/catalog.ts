/**
 * Reference data for the synthetic traffic generator: destinations, operators, number ranges,
 * prices and error codes. Pure data (plus tiny helpers), no I/O.
 *
 * Number ranges are chosen so that every national significant number (NSN) built as
 * `prefix + random digits` up to `length` is a VALID mobile (or, for NANP/MX, fixed-line-or-mobile)
 * number according to libphonenumber-js/max metadata (checked by the unit tests). Format
 * templates mirror libphonenumber's national / international formatting: `#` is replaced by the
 * next NSN digit, every other character is copied.
 *
 * Prices are integer micro-units of `currency` (1 EUR = 1_000_000). SMS prices are per segment,
 * voice prices per minute. MCC/MNC values and operator names are realistic but illustrative.
 */
import type { Channel } from '../core/index.ts';

export type Region = 'APAC' | 'EMEA' | 'AMER';
export type CurrencyCode = 'EUR' | 'USD';

export interface NumberRange {
  /** Leading digits of the national significant number. */
  readonly prefix: string;
  /** Total NSN length in digits (no country code, no trunk prefix). */
  readonly length: number;
  /** National format template, trunk prefix included, e.g. `0##-### ####`. */
  readonly national: string;
  /** International format template after `+<cc> `, e.g. `## ### ####`. */
  readonly international: string;
}

export interface Operator {
  readonly name: string;
  /** Downstream provider id used in `CdrEvent.provider_id`, e.g. `op-my-maxis`. */
  readonly providerId: string;
  readonly mcc: string;
  readonly mnc: string;
  /** Number ranges originally allocated to this operator (ported numbers may be served by another). */
  readonly ranges: readonly NumberRange[];
}

export interface Destination {
  /** ISO 3166-1 alpha-2. */
  readonly iso: string;
  readonly name: string;
  readonly region: Region;
  /** Country calling code without `+`. */
  readonly callingCode: string;
  /** Main MCC (some operators override it, e.g. India, US). */
  readonly mcc: string;
  readonly currency: CurrencyCode;
  readonly operators: readonly Operator[];
  /** Relative share of normal (non-fraud) traffic. */
  readonly trafficWeight: number;
  /** Premium / rarely used destination frequently abused for IRSF and SMS pumping. */
  readonly irsfRisk: boolean;
  /** Whether alphanumeric sender ids are deliverable (not in US/CA). */
  readonly alphanumericSenders: boolean;
  /** Typical shortcode length (digits). */
  readonly shortcodeLength: number;
  /** A2P SMS price / cost per segment (micro-units of `currency`). */
  readonly smsPrice: number;
  readonly smsCost: number;
  /** Voice termination price / cost per minute (micro-units of `currency`). */
  readonly voicePricePerMin: number;
  readonly voiceCostPerMin: number;
}

function ranges(prefixes: readonly string[], length: number, national: string, international: string): NumberRange[] {
  return prefixes.map((prefix) => ({ prefix, length, national, international }));
}

function op(iso: string, name: string, mcc: string, mnc: string, rs: readonly NumberRange[]): Operator {
  return { name, providerId: `op-${iso.toLowerCase()}-${name}`, mcc, mnc, ranges: rs };
}

const US_AREA_DIGITS = ['2', '3', '4', '5', '6', '7', '8', '9'];
/** NANP: NPA + first exchange digit (must be 2-9). */
function nanp(areaCodes: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of areaCodes) for (const d of US_AREA_DIGITS) out.push(a + d);
  return out;
}

const NANP_NAT = '(###) ###-####';
const NANP_INTL = '### ### ####';

export const DESTINATIONS: readonly Destination[] = [
  // ---------------------------------------------------------------- APAC
  {
    iso: 'MY',
    name: 'Malaysia',
    region: 'APAC',
    callingCode: '60',
    mcc: '502',
    currency: 'USD',
    operators: [
      op('MY', 'maxis', '502', '12', ranges(['12', '142', '171', '172'], 9, '0##-### ####', '## ### ####')),
      op('MY', 'celcom', '502', '19', ranges(['19', '132', '133', '137', '148'], 9, '0##-### ####', '## ### ####')),
      op('MY', 'digi', '502', '16', ranges(['16', '146', '102', '103'], 9, '0##-### ####', '## ### ####')),
    ],
    trafficWeight: 8,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 30_000,
    smsCost: 18_000,
    voicePricePerMin: 25_000,
    voiceCostPerMin: 16_000,
  },
  {
    iso: 'SG',
    name: 'Singapore',
    region: 'APAC',
    callingCode: '65',
    mcc: '525',
    currency: 'USD',
    operators: [
      op('SG', 'singtel', '525', '01', ranges(['90', '91', '93', '94', '96', '97', '98'], 8, '#### ####', '#### ####')),
      op('SG', 'starhub', '525', '05', ranges(['81', '82', '83', '84', '85'], 8, '#### ####', '#### ####')),
      op('SG', 'm1', '525', '03', ranges(['86', '87', '88'], 8, '#### ####', '#### ####')),
    ],
    trafficWeight: 5,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 38_000,
    smsCost: 25_000,
    voicePricePerMin: 18_000,
    voiceCostPerMin: 11_000,
  },
  {
    iso: 'ID',
    name: 'Indonesia',
    region: 'APAC',
    callingCode: '62',
    mcc: '510',
    currency: 'USD',
    operators: [
      op('ID', 'telkomsel', '510', '10', ranges(['811', '812', '813', '821', '822', '852', '853'], 11, '0###-####-####', '### #### ####')),
      op('ID', 'indosat', '510', '01', ranges(['814', '815', '816', '855', '856', '857', '858'], 11, '0###-####-####', '### #### ####')),
      op('ID', 'xl', '510', '11', ranges(['817', '818', '819', '859', '877', '878'], 11, '0###-####-####', '### #### ####')),
    ],
    trafficWeight: 9,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 330_000,
    smsCost: 285_000,
    voicePricePerMin: 60_000,
    voiceCostPerMin: 45_000,
  },
  {
    iso: 'PH',
    name: 'Philippines',
    region: 'APAC',
    callingCode: '63',
    mcc: '515',
    currency: 'USD',
    operators: [
      op(
        'PH',
        'globe',
        '515',
        '02',
        ranges(['905', '906', '915', '916', '917', '926', '927', '935', '936', '945', '975', '976', '977', '995'], 10, '0### ### ####', '### ### ####'),
      ),
      op(
        'PH',
        'smart',
        '515',
        '03',
        ranges(['908', '918', '919', '920', '921', '928', '929', '939', '947', '949', '998', '999'], 10, '0### ### ####', '### ### ####'),
      ),
      op('PH', 'dito', '515', '66', ranges(['991', '992', '993', '994'], 10, '0### ### ####', '### ### ####')),
    ],
    trafficWeight: 7,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 150_000,
    smsCost: 112_000,
    voicePricePerMin: 110_000,
    voiceCostPerMin: 85_000,
  },
  {
    iso: 'TH',
    name: 'Thailand',
    region: 'APAC',
    callingCode: '66',
    mcc: '520',
    currency: 'USD',
    operators: [
      op('TH', 'ais', '520', '03', ranges(['81', '82', '83', '84', '86', '87'], 9, '0## ### ####', '## ### ####')),
      op('TH', 'dtac', '520', '05', ranges(['89', '94', '95'], 9, '0## ### ####', '## ### ####')),
      op('TH', 'true', '520', '04', ranges(['61', '62', '63', '64', '65', '91', '92', '93'], 9, '0## ### ####', '## ### ####')),
    ],
    trafficWeight: 5,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 7,
    smsPrice: 25_000,
    smsCost: 15_000,
    voicePricePerMin: 30_000,
    voiceCostPerMin: 19_000,
  },
  {
    iso: 'VN',
    name: 'Viet Nam',
    region: 'APAC',
    callingCode: '84',
    mcc: '452',
    currency: 'USD',
    operators: [
      op('VN', 'viettel', '452', '04', ranges(['96', '97', '98', '32', '33', '34', '35', '36', '37', '38', '39', '86'], 9, '0### ### ###', '### ### ###')),
      op('VN', 'vinaphone', '452', '02', ranges(['91', '94', '81', '82', '83', '84', '85', '88'], 9, '0### ### ###', '### ### ###')),
      op('VN', 'mobifone', '452', '01', ranges(['90', '93', '70', '76', '77', '78', '79'], 9, '0### ### ###', '### ### ###')),
    ],
    trafficWeight: 5,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 62_000,
    smsCost: 47_000,
    voicePricePerMin: 55_000,
    voiceCostPerMin: 40_000,
  },
  {
    iso: 'IN',
    name: 'India',
    region: 'APAC',
    callingCode: '91',
    mcc: '404',
    currency: 'USD',
    operators: [
      op('IN', 'jio', '405', '857', ranges(['70', '72', '74', '60', '69'], 10, '0##### #####', '##### #####')),
      op('IN', 'airtel', '404', '10', ranges(['98', '99', '97', '96', '95'], 10, '0##### #####', '##### #####')),
      op('IN', 'vi', '404', '20', ranges(['90', '91', '92', '93', '94', '84', '85'], 10, '0##### #####', '##### #####')),
    ],
    trafficWeight: 12,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 85_000,
    smsCost: 62_000,
    voicePricePerMin: 12_000,
    voiceCostPerMin: 7_000,
  },
  {
    iso: 'PK',
    name: 'Pakistan',
    region: 'APAC',
    callingCode: '92',
    mcc: '410',
    currency: 'USD',
    operators: [
      op('PK', 'jazz', '410', '01', ranges(['300', '301', '302', '303', '304', '305', '306', '307', '308', '309'], 10, '0### #######', '### #######')),
      op('PK', 'zong', '410', '04', ranges(['310', '311', '312', '313', '314', '315', '316', '317', '318'], 10, '0### #######', '### #######')),
      op('PK', 'telenor', '410', '06', ranges(['340', '341', '342', '343', '344', '345', '346', '347', '348', '349'], 10, '0### #######', '### #######')),
    ],
    trafficWeight: 3,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 180_000,
    smsCost: 142_000,
    voicePricePerMin: 95_000,
    voiceCostPerMin: 72_000,
  },
  // ---------------------------------------------------------------- EMEA
  {
    iso: 'GB',
    name: 'United Kingdom',
    region: 'EMEA',
    callingCode: '44',
    mcc: '234',
    currency: 'EUR',
    operators: [
      op('GB', 'ee', '234', '30', ranges(['740', '741', '742', '743', '744', '746', '747', '748', '749', '751'], 10, '0#### ######', '#### ######')),
      op('GB', 'vodafone', '234', '15', ranges(['771', '772', '773', '774', '775', '776', '777', '753', '754', '755'], 10, '0#### ######', '#### ######')),
      op(
        'GB',
        'o2',
        '234',
        '10',
        ranges(['780', '781', '784', '785', '786', '787', '788', '789', '790', '792', '794', '795'], 10, '0#### ######', '#### ######'),
      ),
    ],
    trafficWeight: 8,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 38_000,
    smsCost: 27_000,
    voicePricePerMin: 14_000,
    voiceCostPerMin: 8_000,
  },
  {
    iso: 'DE',
    name: 'Germany',
    region: 'EMEA',
    callingCode: '49',
    mcc: '262',
    currency: 'EUR',
    operators: [
      op('DE', 'telekom', '262', '01', [
        ...ranges(['151'], 11, '0#### #######', '#### #######'),
        ...ranges(['160', '170', '171', '175'], 11, '0### ########', '### ########'),
      ]),
      op('DE', 'vodafone', '262', '02', [
        ...ranges(['152'], 11, '0#### #######', '#### #######'),
        ...ranges(['162', '172', '173', '174'], 11, '0### ########', '### ########'),
      ]),
      op('DE', 'o2', '262', '03', [
        ...ranges(['157', '159'], 11, '0#### #######', '#### #######'),
        ...ranges(['176', '177', '178', '179'], 11, '0### ########', '### ########'),
      ]),
    ],
    trafficWeight: 7,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 85_000,
    smsCost: 71_000,
    voicePricePerMin: 22_000,
    voiceCostPerMin: 14_000,
  },
  {
    iso: 'FR',
    name: 'France',
    region: 'EMEA',
    callingCode: '33',
    mcc: '208',
    currency: 'EUR',
    operators: [
      op('FR', 'orange', '208', '01', ranges(['67', '68', '77', '78'], 9, '0# ## ## ## ##', '# ## ## ## ##')),
      op('FR', 'sfr', '208', '10', ranges(['60', '61', '62'], 9, '0# ## ## ## ##', '# ## ## ## ##')),
      op('FR', 'bouygues', '208', '20', ranges(['64', '65', '66', '75'], 9, '0# ## ## ## ##', '# ## ## ## ##')),
    ],
    trafficWeight: 6,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 72_000,
    smsCost: 56_000,
    voicePricePerMin: 20_000,
    voiceCostPerMin: 13_000,
  },
  {
    iso: 'ES',
    name: 'Spain',
    region: 'EMEA',
    callingCode: '34',
    mcc: '214',
    currency: 'EUR',
    operators: [
      op('ES', 'movistar', '214', '07', ranges(['609', '619', '629', '639', '649', '659', '669', '679', '689', '699'], 9, '### ## ## ##', '### ## ## ##')),
      op('ES', 'vodafone', '214', '01', ranges(['607', '610', '617', '627', '637', '647', '667', '677', '687', '697'], 9, '### ## ## ##', '### ## ## ##')),
      op('ES', 'orange', '214', '03', ranges(['620', '630', '636', '645', '653', '656', '657', '658', '676', '686'], 9, '### ## ## ##', '### ## ## ##')),
    ],
    trafficWeight: 5,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 6,
    smsPrice: 62_000,
    smsCost: 46_000,
    voicePricePerMin: 18_000,
    voiceCostPerMin: 11_000,
  },
  {
    iso: 'IT',
    name: 'Italy',
    region: 'EMEA',
    callingCode: '39',
    mcc: '222',
    currency: 'EUR',
    operators: [
      op(
        'IT',
        'tim',
        '222',
        '01',
        ranges(['330', '331', '333', '334', '335', '336', '337', '338', '339', '360', '366', '368'], 10, '### ### ####', '### ### ####'),
      ),
      op('IT', 'vodafone', '222', '10', ranges(['340', '342', '343', '344', '345', '346', '347', '348', '349'], 10, '### ### ####', '### ### ####')),
      op(
        'IT',
        'windtre',
        '222',
        '88',
        ranges(['320', '322', '323', '324', '327', '328', '329', '380', '388', '389', '391', '392', '393'], 10, '### ### ####', '### ### ####'),
      ),
    ],
    trafficWeight: 5,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 66_000,
    smsCost: 50_000,
    voicePricePerMin: 19_000,
    voiceCostPerMin: 12_000,
  },
  {
    iso: 'NL',
    name: 'Netherlands',
    region: 'EMEA',
    callingCode: '31',
    mcc: '204',
    currency: 'EUR',
    operators: [
      op('NL', 'kpn', '204', '08', ranges(['61', '65'], 9, '0# ########', '# ########')),
      op('NL', 'vodafone', '204', '04', ranges(['62', '64'], 9, '0# ########', '# ########')),
      op('NL', 'odido', '204', '16', ranges(['63', '68'], 9, '0# ########', '# ########')),
    ],
    trafficWeight: 3,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 92_000,
    smsCost: 74_000,
    voicePricePerMin: 21_000,
    voiceCostPerMin: 14_000,
  },
  {
    iso: 'NG',
    name: 'Nigeria',
    region: 'EMEA',
    callingCode: '234',
    mcc: '621',
    currency: 'USD',
    operators: [
      op('NG', 'mtn', '621', '30', ranges(['803', '806', '703', '706', '813', '816', '810', '814', '903', '906'], 10, '0### ### ####', '### ### ####')),
      op('NG', 'airtel', '621', '20', ranges(['802', '808', '708', '812', '701', '902', '907', '901'], 10, '0### ### ####', '### ### ####')),
      op('NG', 'glo', '621', '50', ranges(['805', '807', '705', '815', '811', '905'], 10, '0### ### ####', '### ### ####')),
    ],
    trafficWeight: 3,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 185_000,
    smsCost: 152_000,
    voicePricePerMin: 120_000,
    voiceCostPerMin: 95_000,
  },
  {
    iso: 'ZA',
    name: 'South Africa',
    region: 'EMEA',
    callingCode: '27',
    mcc: '655',
    currency: 'USD',
    operators: [
      op('ZA', 'vodacom', '655', '01', ranges(['82', '72', '76', '79'], 9, '0## ### ####', '## ### ####')),
      op('ZA', 'mtn', '655', '10', ranges(['83', '73', '78'], 9, '0## ### ####', '## ### ####')),
      op('ZA', 'cellc', '655', '07', ranges(['84', '74'], 9, '0## ### ####', '## ### ####')),
    ],
    trafficWeight: 2,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 21_000,
    smsCost: 13_500,
    voicePricePerMin: 45_000,
    voiceCostPerMin: 32_000,
  },
  {
    iso: 'AE',
    name: 'United Arab Emirates',
    region: 'EMEA',
    callingCode: '971',
    mcc: '424',
    currency: 'USD',
    operators: [
      op('AE', 'etisalat', '424', '02', ranges(['50', '54', '56'], 9, '0## ### ####', '## ### ####')),
      op('AE', 'du', '424', '03', ranges(['52', '55', '58'], 9, '0## ### ####', '## ### ####')),
    ],
    trafficWeight: 3,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 36_000,
    smsCost: 25_000,
    voicePricePerMin: 95_000,
    voiceCostPerMin: 70_000,
  },
  // ---------------------------------------------------------------- AMER
  {
    iso: 'US',
    name: 'United States',
    region: 'AMER',
    callingCode: '1',
    mcc: '310',
    currency: 'USD',
    operators: [
      op('US', 'att', '310', '410', ranges(nanp(['201', '212', '213', '305', '310', '312', '347']), 10, NANP_NAT, NANP_INTL)),
      op('US', 'tmobile', '310', '260', ranges(nanp(['404', '415', '512', '617', '646', '702', '713']), 10, NANP_NAT, NANP_INTL)),
      op('US', 'verizon', '311', '480', ranges(nanp(['718', '773', '786', '818', '917', '929']), 10, NANP_NAT, NANP_INTL)),
    ],
    trafficWeight: 12,
    irsfRisk: false,
    alphanumericSenders: false,
    shortcodeLength: 5,
    smsPrice: 7_900,
    smsCost: 4_600,
    voicePricePerMin: 8_500,
    voiceCostPerMin: 4_000,
  },
  {
    iso: 'CA',
    name: 'Canada',
    region: 'AMER',
    callingCode: '1',
    mcc: '302',
    currency: 'USD',
    operators: [
      op('CA', 'rogers', '302', '720', ranges(nanp(['416', '647', '437']), 10, NANP_NAT, NANP_INTL)),
      op('CA', 'bell', '302', '610', ranges(nanp(['514', '438', '613']), 10, NANP_NAT, NANP_INTL)),
      op('CA', 'telus', '302', '220', ranges(nanp(['604', '778', '403', '587']), 10, NANP_NAT, NANP_INTL)),
    ],
    trafficWeight: 3,
    irsfRisk: false,
    alphanumericSenders: false,
    shortcodeLength: 5,
    smsPrice: 8_200,
    smsCost: 5_100,
    voicePricePerMin: 9_000,
    voiceCostPerMin: 4_500,
  },
  {
    iso: 'BR',
    name: 'Brazil',
    region: 'AMER',
    callingCode: '55',
    mcc: '724',
    currency: 'USD',
    operators: [
      op('BR', 'vivo', '724', '06', ranges(['1196', '1197', '1198', '1199', '2199', '2198'], 11, '(##) #####-####', '## ##### ####')),
      op('BR', 'claro', '724', '05', ranges(['3199', '3198', '4199', '5199', '6199'], 11, '(##) #####-####', '## ##### ####')),
      op('BR', 'tim', '724', '04', ranges(['7199', '8199', '8599', '1999', '4899'], 11, '(##) #####-####', '## ##### ####')),
    ],
    trafficWeight: 7,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 26_000,
    smsCost: 15_500,
    voicePricePerMin: 28_000,
    voiceCostPerMin: 18_000,
  },
  {
    iso: 'MX',
    name: 'Mexico',
    region: 'AMER',
    callingCode: '52',
    mcc: '334',
    currency: 'USD',
    operators: [
      op('MX', 'telcel', '334', '020', ranges(['55', '33', '81'], 10, '## #### ####', '## #### ####')),
      op('MX', 'att', '334', '050', ranges(['222', '998', '664'], 10, '### ### ####', '### ### ####')),
      op('MX', 'movistar', '334', '030', ranges(['442', '477', '999'], 10, '### ### ####', '### ### ####')),
    ],
    trafficWeight: 5,
    irsfRisk: false,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 41_000,
    smsCost: 29_000,
    voicePricePerMin: 24_000,
    voiceCostPerMin: 15_000,
  },
  // ---------------------------------------------------------------- IRSF-prone premium destinations
  {
    iso: 'LV',
    name: 'Latvia',
    region: 'EMEA',
    callingCode: '371',
    mcc: '247',
    currency: 'EUR',
    operators: [
      op('LV', 'lmt', '247', '01', ranges(['26', '29'], 8, '## ### ###', '## ### ###')),
      op('LV', 'tele2', '247', '02', ranges(['20', '25', '27'], 8, '## ### ###', '## ### ###')),
      op('LV', 'bite', '247', '05', ranges(['22', '24', '28'], 8, '## ### ###', '## ### ###')),
    ],
    trafficWeight: 0.3,
    irsfRisk: true,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 96_000,
    smsCost: 81_000,
    voicePricePerMin: 620_000,
    voiceCostPerMin: 540_000,
  },
  {
    iso: 'GN',
    name: 'Guinea',
    region: 'EMEA',
    callingCode: '224',
    mcc: '611',
    currency: 'USD',
    operators: [
      op('GN', 'orange', '611', '02', ranges(['620', '621', '622', '623', '624', '625', '626', '627', '628', '629'], 9, '### ## ## ##', '### ## ## ##')),
      op('GN', 'mtn', '611', '04', ranges(['660', '661', '662', '663', '664', '665', '666', '667', '668', '669'], 9, '### ## ## ##', '### ## ## ##')),
      op('GN', 'cellcom', '611', '05', ranges(['655', '656', '657'], 9, '### ## ## ##', '### ## ## ##')),
    ],
    trafficWeight: 0.1,
    irsfRisk: true,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 310_000,
    smsCost: 275_000,
    voicePricePerMin: 980_000,
    voiceCostPerMin: 870_000,
  },
  {
    iso: 'CU',
    name: 'Cuba',
    region: 'AMER',
    callingCode: '53',
    mcc: '368',
    currency: 'USD',
    operators: [
      // ETECSA (Cubacel) is the only mobile network; the second route is a transit aggregator.
      op('CU', 'cubacel', '368', '01', ranges(['52', '53', '54', '55', '56', '58'], 8, '0# #######', '# #######')),
      { name: 'transit', providerId: 'agg-cu-transit', mcc: '368', mnc: '01', ranges: [] },
    ],
    trafficWeight: 0.1,
    irsfRisk: true,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 405_000,
    smsCost: 362_000,
    voicePricePerMin: 1_210_000,
    voiceCostPerMin: 1_060_000,
  },
  {
    iso: 'SO',
    name: 'Somalia',
    region: 'EMEA',
    callingCode: '252',
    mcc: '637',
    currency: 'USD',
    operators: [
      op('SO', 'hormuud', '637', '50', ranges(['61', '77'], 9, '## ### ####', '## ### ####')),
      op('SO', 'telesom', '637', '01', ranges(['63'], 9, '## ### ####', '## ### ####')),
      op('SO', 'golis', '637', '30', ranges(['90'], 9, '## ### ####', '## ### ####')),
    ],
    trafficWeight: 0.1,
    irsfRisk: true,
    alphanumericSenders: true,
    shortcodeLength: 4,
    smsPrice: 255_000,
    smsCost: 224_000,
    voicePricePerMin: 1_390_000,
    voiceCostPerMin: 1_250_000,
  },
  {
    iso: 'TN',
    name: 'Tunisia',
    region: 'EMEA',
    callingCode: '216',
    mcc: '605',
    currency: 'EUR',
    operators: [
      op('TN', 'ooredoo', '605', '03', ranges(['20', '21', '22', '23', '24', '25', '26', '27', '28', '29'], 8, '## ### ###', '## ### ###')),
      op('TN', 'orange', '605', '01', ranges(['50', '51', '52', '53', '54', '55'], 8, '## ### ###', '## ### ###')),
      op('TN', 'tt', '605', '02', ranges(['90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '40', '41', '42'], 8, '## ### ###', '## ### ###')),
    ],
    trafficWeight: 0.3,
    irsfRisk: true,
    alphanumericSenders: true,
    shortcodeLength: 5,
    smsPrice: 282_000,
    smsCost: 251_000,
    voicePricePerMin: 560_000,
    voiceCostPerMin: 482_000,
  },
];

export const DESTINATION_BY_ISO: ReadonlyMap<string, Destination> = new Map(DESTINATIONS.map((d) => [d.iso, d]));

/** ISO codes of the IRSF-prone premium destinations. */
export const IRSF_DESTINATIONS: readonly string[] = DESTINATIONS.filter((d) => d.irsfRisk).map((d) => d.iso);

/** All number ranges of a destination (operator order, then range order). */
export function rangesOf(dest: Destination): { operator: Operator; range: NumberRange }[] {
  const out: { operator: Operator; range: NumberRange }[] = [];
  for (const o of dest.operators) for (const r of o.ranges) out.push({ operator: o, range: r });
  return out;
}

/** Fill a `#` template with the digits of `nsn` (extra `#` are dropped, extra digits appended). */
export function applyTemplate(template: string, nsn: string): string {
  let out = '';
  let j = 0;
  for (let i = 0; i < template.length; i++) {
    const ch = template.charCodeAt(i);
    if (ch === 35 /* # */) {
      if (j < nsn.length) out += nsn[j++];
    } else {
      out += template[i];
    }
  }
  if (j < nsn.length) out += nsn.slice(j);
  return out;
}

// ------------------------------------------------------------------ channel pricing

/**
 * Unit price of non-SMS/voice channels, relative to the destination's SMS price (`factor`) or
 * absolute micro-units (`fixed`). The unit is: segment (sms), message (mms, OTT, push, email),
 * minute (voice: see `Destination.voicePricePerMin`).
 */
export const CHANNEL_PRICING: Readonly<
  Record<Channel, { readonly priceFactor: number; readonly costFactor: number; readonly fixedPrice: number; readonly fixedCost: number }>
> = {
  sms: { priceFactor: 1, costFactor: 1, fixedPrice: 0, fixedCost: 0 },
  mms: { priceFactor: 3, costFactor: 3, fixedPrice: 0, fixedCost: 0 },
  whatsapp: { priceFactor: 0.45, costFactor: 0.36, fixedPrice: 4_000, fixedCost: 3_000 },
  viber: { priceFactor: 0.5, costFactor: 0.4, fixedPrice: 0, fixedCost: 0 },
  rcs: { priceFactor: 0.8, costFactor: 0.62, fixedPrice: 0, fixedCost: 0 },
  push: { priceFactor: 0, costFactor: 0, fixedPrice: 20, fixedCost: 4 },
  email: { priceFactor: 0, costFactor: 0, fixedPrice: 90, fixedCost: 30 },
  voice: { priceFactor: 0, costFactor: 0, fixedPrice: 0, fixedCost: 0 },
};

// ------------------------------------------------------------------ providers that are not operators

export const AGGREGATORS: Readonly<Record<Region, readonly string[]>> = {
  APAC: ['agg-apac-hub', 'agg-global-tier1'],
  EMEA: ['agg-emea-hub', 'agg-global-tier1'],
  AMER: ['agg-amer-hub', 'agg-global-tier1'],
};
export const VOICE_CARRIERS: readonly string[] = ['carrier-voice-tier1', 'carrier-voice-tier2', 'carrier-voice-wholesale'];
export const OTT_PROVIDERS: Readonly<Record<'whatsapp' | 'viber' | 'rcs' | 'push' | 'email', readonly string[]>> = {
  whatsapp: ['ott-whatsapp-cloud', 'ott-whatsapp-bsp'],
  viber: ['ott-viber'],
  rcs: ['rcs-google-jibe'],
  push: ['push-fcm', 'push-apns'],
  email: ['esp-relay-eu', 'esp-relay-us', 'esp-direct-mx'],
};

// ------------------------------------------------------------------ error codes per channel family

export type ErrorFamily = 'sms' | 'mms' | 'voice' | 'email' | 'whatsapp' | 'viber' | 'rcs' | 'push';
export type NonDeliveredStatus = 'failed' | 'rejected' | 'expired';

/** Weighted error codes; `null` = status without an error code. */
export const ERROR_CODES: Readonly<Record<ErrorFamily, Readonly<Record<NonDeliveredStatus, ReadonlyArray<readonly [string | null, number]>>>>> = {
  sms: {
    failed: [
      ['MAP:27', 30],
      ['MAP:1', 18],
      ['MAP:5', 6],
      ['MAP:31', 8],
      ['MAP:32', 12],
      ['MAP:34', 10],
      ['MAP:13', 6],
      ['MAP:11', 4],
      ['SMPP:0x00000045', 6],
    ],
    rejected: [
      ['SMPP:0x0000000B', 35],
      ['SMPP:0x00000058', 20],
      ['SMPP:0x0000000A', 10],
      ['POLICY:DEST_BLOCKED', 15],
      ['POLICY:SENDER_NOT_REGISTERED', 20],
    ],
    expired: [
      [null, 50],
      ['MAP:27', 30],
      ['VP_EXPIRED', 20],
    ],
  },
  mms: {
    failed: [
      ['MM7:4004', 40],
      ['MM7:3000', 25],
      ['MM7:4005', 20],
      ['MAP:27', 15],
    ],
    rejected: [
      ['MM7:2007', 50],
      ['MM7:4006', 30],
      ['POLICY:CONTENT_TOO_LARGE', 20],
    ],
    expired: [
      [null, 60],
      ['MM7:4004', 40],
    ],
  },
  voice: {
    failed: [
      ['SIP:486', 30],
      ['SIP:480', 25],
      ['SIP:487', 20],
      ['SIP:408', 10],
      ['SIP:404', 6],
      ['SIP:503', 5],
      ['SIP:603', 4],
    ],
    rejected: [
      ['SIP:403', 60],
      ['SIP:488', 25],
      ['SIP:484', 15],
    ],
    expired: [['SIP:408', 100]],
  },
  email: {
    failed: [
      ['SMTP:550 5.1.1', 45],
      ['SMTP:552 5.2.2', 15],
      ['SMTP:554 5.7.1', 15],
      ['SMTP:550 5.4.1', 10],
      ['SMTP:421 4.7.0', 15],
    ],
    rejected: [
      ['SMTP:550 5.7.26', 40],
      ['SMTP:553 5.1.3', 35],
      ['POLICY:SUPPRESSED', 25],
    ],
    expired: [['SMTP:421 4.4.7', 100]],
  },
  whatsapp: {
    failed: [
      ['WA:131026', 55],
      ['WA:131047', 20],
      ['WA:131049', 15],
      ['WA:131000', 10],
    ],
    rejected: [
      ['WA:132001', 40],
      ['WA:130429', 35],
      ['WA:131031', 25],
    ],
    expired: [[null, 100]],
  },
  viber: {
    failed: [
      ['VIBER:NOT_VIBER_USER', 60],
      ['VIBER:USER_BLOCKED', 25],
      ['VIBER:DEVICE_NOT_SUPPORTED', 15],
    ],
    rejected: [
      ['VIBER:SENDER_NOT_APPROVED', 70],
      ['VIBER:RATE_LIMIT', 30],
    ],
    expired: [['VIBER:TTL_EXPIRED', 100]],
  },
  rcs: {
    failed: [
      ['RCS:NOT_RCS_CAPABLE', 70],
      ['RCS:404', 20],
      ['RCS:500', 10],
    ],
    rejected: [
      ['RCS:AGENT_NOT_LAUNCHED', 60],
      ['RCS:429', 40],
    ],
    expired: [['RCS:TTL_EXPIRED', 100]],
  },
  push: {
    failed: [
      ['FCM:UNREGISTERED', 45],
      ['APNS:BadDeviceToken', 30],
      ['APNS:Unregistered', 15],
      ['FCM:UNAVAILABLE', 10],
    ],
    rejected: [
      ['FCM:QUOTA_EXCEEDED', 60],
      ['APNS:TooManyRequests', 40],
    ],
    expired: [[null, 100]],
  },
};

// ------------------------------------------------------------------ senders and end users

/** Brand names, usable as alphanumeric sender ids (≤ 11 chars, GSM alphabet). */
export const BRANDS: readonly string[] = [
  'ACMEBANK',
  'SHOPLY',
  'RIDEGO',
  'FOODDASH',
  'PAYWISE',
  'TRAVELO',
  'MEDIKIT',
  'CLOUDOTP',
  'GAMEZONE',
  'NEWSBYTE',
  'FITTRACK',
  'HOMEFIX',
  'QUICKLOAN',
  'STREAMIX',
  'CARGOLINK',
  'BOOKNEST',
  'PETPAL',
  'SKYAIR',
  'TELCOAPP',
  'EDULEARN',
  'GREENGRID',
  'URBANCAB',
  'MARKETHUB',
  'SAFEHOME',
  'DOCNOW',
  'TICKETIO',
  'COINVAULT',
  'PARCELX',
  'DATEME',
  'HOTELIER',
  'INSURE24',
  'GYMCLUB',
  'VOTEINFO',
  'CITYBUS',
  'AUTHGUARD',
  'WINEBOX',
  'KIDSCARE',
  'JOBSPOT',
  'LUXWEAR',
  'FARMFRESH',
];

export const FIRST_NAMES: readonly string[] = [
  'john',
  'jane',
  'maria',
  'ahmad',
  'siti',
  'wei',
  'priya',
  'rahul',
  'nguyen',
  'somchai',
  'juan',
  'ana',
  'pierre',
  'sophie',
  'luca',
  'giulia',
  'jan',
  'emma',
  'olu',
  'thabo',
  'fatima',
  'omar',
  'carlos',
  'lucia',
  'raj',
  'mei',
  'kofi',
  'amira',
  'daniel',
  'sarah',
  'david',
  'laura',
  'michael',
  'anna',
  'james',
  'elena',
  'ali',
  'noor',
  'ivan',
  'zara',
];
export const LAST_NAMES: readonly string[] = [
  'smith',
  'tan',
  'lim',
  'wong',
  'kumar',
  'sharma',
  'santos',
  'reyes',
  'tran',
  'garcia',
  'martin',
  'bernard',
  'rossi',
  'bianchi',
  'devries',
  'jansen',
  'okafor',
  'nkosi',
  'khan',
  'hassan',
  'silva',
  'lopez',
  'schmidt',
  'mueller',
  'dubois',
  'kowalski',
  'chen',
  'lee',
  'patel',
  'ibrahim',
];
/** Non-ASCII local parts (SMTPUTF8 mailboxes). */
export const UNICODE_LOCAL_PARTS: readonly string[] = ['jörg', 'zoë', 'josé', 'françois', 'müller', 'søren', 'åsa', 'çelik'];

/** ASCII recipient mail domains (documentation / example TLDs only). */
export const EMAIL_DOMAINS: readonly string[] = [
  'example.com',
  'example.org',
  'example.net',
  'mail.example',
  'inbox.example',
  'post.example',
  'webmail.example',
  'corp.example',
];
/** Internationalised domains with their IDNA (punycode) form. */
export const IDN_EMAIL_DOMAINS: ReadonlyArray<{ readonly unicode: string; readonly ascii: string }> = [
  { unicode: 'bücher.example', ascii: 'xn--bcher-kva.example' },
  { unicode: 'münchen.example', ascii: 'xn--mnchen-3ya.example' },
  { unicode: 'café.example', ascii: 'xn--caf-dma.example' },
  { unicode: 'españa.example', ascii: 'xn--espaa-rta.example' },
  { unicode: 'zürich.example', ascii: 'xn--zrich-kva.example' },
  { unicode: 'köln.example', ascii: 'xn--kln-sna.example' },
];

// ------------------------------------------------------------------ client IPs (documentation ranges only)

/** RFC 5737 IPv4 documentation networks (/24) and the RFC 3849 IPv6 documentation prefix. */
export const IPV4_DOC_NETS: readonly string[] = ['192.0.2.', '198.51.100.', '203.0.113.'];
export const IPV6_DOC_PREFIX = '2001:db8:';
