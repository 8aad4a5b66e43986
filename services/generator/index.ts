export { Prng, WeightedPicker, hash32, permute32 } from './prng.ts';
export type { WeightedItems } from './prng.ts';
export {
  AGGREGATORS,
  BRANDS,
  CHANNEL_PRICING,
  DESTINATIONS,
  DESTINATION_BY_ISO,
  EMAIL_DOMAINS,
  ERROR_CODES,
  FIRST_NAMES,
  IDN_EMAIL_DOMAINS,
  IPV4_DOC_NETS,
  IPV6_DOC_PREFIX,
  IRSF_DESTINATIONS,
  LAST_NAMES,
  OTT_PROVIDERS,
  UNICODE_LOCAL_PARTS,
  VOICE_CARRIERS,
  applyTemplate,
  rangesOf,
} from './catalog.ts';
export type { CurrencyCode, Destination, ErrorFamily, NonDeliveredStatus, NumberRange, Operator, Region } from './catalog.ts';
export { ATTACK_SCENARIOS, SCENARIOS, SUBSCRIBER_GAP_MS, TrafficGenerator, identifierFormatOf, scenarioOf } from './trafficGenerator.ts';
export type {
  AttackLabel,
  AttackScenario,
  CampaignOptions,
  FraudActors,
  GeneratedCdr,
  GeneratorOptions,
  IdentifierFormat,
  ScenarioName,
} from './trafficGenerator.ts';
