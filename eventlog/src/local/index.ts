export { LocalEventLog, type LogUsage, type RecoveryStats } from './log.ts';
export {
  LocalEventLogConfigSchema,
  parseLocalEventLogConfig,
  type LocalEventLogConfig,
  type LocalEventLogConfigInput,
} from './config.ts';
export { LocalLogErrors, logError, isLogError, type LocalLogErrorCode } from './errors.ts';
export { LocalConsumer, type LocalConsumerOptions } from './consumer.ts';
