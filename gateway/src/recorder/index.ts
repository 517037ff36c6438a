export { EventSink, type EventSinkOptions } from './sink.ts';
export { SessionRecorder, type GatewayInfo } from './recorder.ts';
