export {
  SpoolingProducer,
  openSpoolingProducer,
  SPOOL_TOPIC,
  SPOOL_TOPIC_HEADER,
  FORWARDER_GROUP,
  type SpoolingProducerOptions,
  type SpoolMode,
} from './producer.ts';
