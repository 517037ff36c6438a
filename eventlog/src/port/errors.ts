/** Error codes of the thread bridge (eventlog/src/port). */
export const PortLogErrors = {
  LOG_ERR_PORT: { retriable: false, description: 'The owning thread could not start the consumer or create topics for a worker; the message says why.' },
  LOG_ERR_PORT_HANDLER: { retriable: false, description: 'The worker\'s batch handler failed and named no code of its own; the batch is not committed and is delivered again.' },
  LOG_ERR_PORT_CLOSED: { retriable: true, description: 'The bridge closed with a batch unacknowledged or a send unanswered; the batch stays uncommitted and is delivered again on the next start.' },
  LOG_ERR_PORT_USAGE: { retriable: false, description: 'A worker-side producer was used after close().' },
} as const;
