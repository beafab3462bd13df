// Orders to a bulk ingestion API: onBatch sends up to a batch's worth of events in one request and
// returns one {status, errormessage} per event, so only the events the API refused are retried
// (429/5xx) or discarded (other 4xx). At low volume single events arrive through onTrack.

async function postBulk(events, settings) {
  const res = await fetch(new URL('/v1/bulk', settings.endpoint), {
    method: 'POST',
    headers: new Headers({
      Authorization: `Bearer ${settings.apiToken}`,
      'Content-Type': 'application/json',
    }),
    body: JSON.stringify({
      items: events.map((e) => ({
        id: e.messageId,
        order: e.properties?.orderId,
        total: e.properties?.total,
        user: e.userId ?? e.anonymousId,
        at: e.timestamp,
      })),
    }),
  });
  // The whole request failed: the batch is retried as one.
  if (res.status === 429 || res.status >= 500) throw new RetryError(`bulk API answered ${res.status}`);
  if (!res.ok) throw new ValidationError(`bulk API rejected the batch: ${res.status}`);
  // The API answers one result per item, in order: {results: [{status: 201}, {status: 422, error: '…'}]}.
  const { results } = await res.json();
  if (!Array.isArray(results) || results.length !== events.length) {
    throw new RetryError('bulk API answered without one result per event');
  }
  return results.map((r) => ({ status: r.status, errormessage: r.error ?? '' }));
}

function checkOrder(event) {
  if (!_.isString(event.properties?.orderId)) {
    throw new InvalidEventPayload('order events need properties.orderId');
  }
}

async function onBatch(events, settings) {
  // An event the API could never take is discarded on its own, without sending it.
  const statuses = events.map((e) => {
    try {
      checkOrder(e);
      return undefined;
    } catch (err) {
      return { status: 400, errormessage: err.message };
    }
  });
  const valid = events.filter((_e, i) => statuses[i] === undefined);
  const sent = valid.length > 0 ? await postBulk(valid, settings) : [];
  let next = 0;
  const result = statuses.map((s) => s ?? sent[next++]);
  console.log(`bulk of ${events.length}: ${result.filter((r) => r.status < 300).length} accepted`);
  return result;
}

async function onTrack(event, settings) {
  checkOrder(event);
  const [result] = await postBulk([event], settings);
  if (result.status === 429 || result.status >= 500) throw new RetryError(result.errormessage);
  if (result.status >= 300) throw new ValidationError(result.errormessage);
}
