export { EventSink, type EventSinkOptions, type RecordSink, type ChainWriter } from './sink.ts';
export { SessionRecorder, type GatewayInfo } from './recorder.ts';
